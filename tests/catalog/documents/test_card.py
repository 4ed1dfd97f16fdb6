"""Dataset card: stats checked against pyarrow/numpy on the files, text and HTML, a Chromium render."""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from examples.qingdao_demo import generate

from catalog import store
from catalog.documents.card import html as card_html
from catalog.documents.card import stats as card_stats
from catalog.documents.card import writer as card
from catalog.documents.card.markdown import render_markdown
from catalog.documents.manifest_view import data_files
from catalog.storage import manifest as manifest_mod
from pipelines import recipe as recipe_mod
from pipelines.driver import Runner
from tests.conftest import require_chromium

REPO = Path(__file__).resolve().parents[3]
UTC = dt.UTC
COPERNICUS = "Generated using E.U. Copernicus Marine Service Information"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def _demo_recipe(folder: Path) -> Path:
    path = folder / "demo-card.yaml"
    path.write_text(textwrap.dedent("""\
        name: demo-card
        title: Qingdao demo grid (card test)
        licence: CC0-1.0
        attribution: Synthetic test data
        owner: {name: tests, email: tests@haina.invalid}
        sources:
          - kind: netcdf_grid
            uri: sources/*.nc
            chunk_dim: time
            chunk_size: 1
        quality: {max_failing_fraction: 0.001}
        """))
    return path


def _run(recipe_path: Path, folder: Path):
    runner = Runner(recipe_mod.load(recipe_path), warehouse=str(folder / "wh"),
                    catalog=f"sqlite:///{folder / 'wh' / 'catalog.db'}")
    outcome = runner.run()
    version = runner.catalog.version(outcome.dataset, outcome.version_id)
    return runner.catalog, version, manifest_mod.Manifest.read(version.path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card-demo")
    generate(folder / "sources", days=1)
    return _run(_demo_recipe(folder), folder)


@pytest.fixture(scope="module")
def cmems(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("card-cmems")
    return _run(REPO / "tests" / "recipes" / "cmems_glo_so.yaml", folder)


def _table(version, manifest) -> pa.Table:
    """All data rows, files in path order (the order ``scan`` reads them)."""
    return pa.concat_tables([pq.read_table(Path(version.path) / f.path)
                             for f in data_files(manifest)])


# --- stats against an independent computation on the files ---------------------------------------
def test_coverage_matches_the_coordinate_columns(demo):
    _, version, manifest = demo
    table = _table(version, manifest)
    stats = card_stats.scan(manifest, version.path)
    cov = stats.coverage_dict()
    times = table.column("time").to_pandas()
    assert cov["time_min"] == times.min().isoformat().replace("+00:00", "Z")
    assert cov["time_max"] == times.max().isoformat().replace("+00:00", "Z")
    lon, lat = (table.column(c).to_numpy() for c in ("longitude", "latitude"))
    assert cov["bbox"] == [lon.min(), lat.min(), lon.max(), lat.max()]
    assert cov["depth"] == [pc.min(table.column("depth")).as_py(),
                            pc.max(table.column("depth")).as_py()]
    assert stats.rows == table.num_rows == manifest.rows.written


def test_rows_per_day_and_histograms_count_every_value(demo):
    _, version, manifest = demo
    table = _table(version, manifest)
    stats = card_stats.scan(manifest, version.path)
    days = table.column("time").to_pandas().dt.strftime("%Y-%m-%d").value_counts().to_dict()
    assert stats.per_day == days
    assert set(stats.histograms) == {"sea_water_potential_temperature", "sea_water_salinity",
                                     "eastward_sea_water_velocity", "northward_sea_water_velocity"}
    for name, h in stats.histograms.items():
        values = table.column(name).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        assert h.total == finite.size
        assert h.below + int(h.counts.sum()) + h.above == finite.size
        assert len(h.edges) == len(h.counts) + 1 and np.all(np.diff(h.edges) > 0)
        assert len(h.counts) <= card_stats.HIST_BINS
        inside = np.count_nonzero((finite >= h.edges[0]) & (finite <= h.edges[-1]))
        assert abs(inside - int(h.counts.sum())) <= finite.size * 1e-3  # fine-bin rounding


def test_map_sample_is_every_nth_row_and_deterministic(demo):
    _, version, manifest = demo
    table = _table(version, manifest)
    stats = card_stats.scan(manifest, version.path, max_points=100)
    stride = math.ceil(table.num_rows / 100)
    np.testing.assert_array_equal(stats.sample_lon, table.column("longitude").to_numpy()[::stride])
    np.testing.assert_array_equal(stats.sample_lat, table.column("latitude").to_numpy()[::stride])
    again = card_stats.scan(manifest, version.path, max_points=100)
    np.testing.assert_array_equal(again.sample_lon, stats.sample_lon)
    assert card_stats.scan(manifest, version.path).sample_lon.size <= card_stats.MAX_MAP_POINTS


@pytest.mark.parametrize("counts, tail, expect_below, expect_above", [
    # a bulk of values and two far outliers: the axis skips them and counts them
    ([1] + [0] * 50 + [100] * 20 + [0] * 50 + [1], 0.005, 1, 1),
    # no far tail: the axis spans every value
    ([5, 10, 20, 10, 5], 0.005, 0, 0),
    # everything in one fine bin
    ([0, 0, 7, 0], 0.005, 0, 0),
])
def test_display_histogram(counts, tail, expect_below, expect_above):
    counts = np.array(counts, dtype=np.int64)
    edges = np.linspace(0.0, float(len(counts)), len(counts) + 1)
    h = card_stats.display_histogram("x", edges, counts, bins=4, tail=tail)
    assert (h.below, h.above) == (expect_below, expect_above)
    assert h.below + int(h.counts.sum()) + h.above == counts.sum() == h.total
    assert len(h.counts) <= 4 and len(h.edges) == len(h.counts) + 1


def _qc_version(folder: Path) -> dict:
    table = pa.table({
        "time": pa.array([dt.datetime(2024, 3, d, tzinfo=UTC) for d in (1, 1, 2, 2, 4)],
                         pa.timestamp("us", tz="UTC")),
        "latitude": [1.0, 1.5, 2.0, 2.5, 3.0], "longitude": [-1.0, -1.5, -2.0, -2.5, -3.0],
        "depth": pa.array([None] * 5, pa.float64()),
        "sea_water_temperature": pa.array([10, 11, float("nan"), 12, 13], pa.float32()),
        "sea_water_temperature_qc": pa.array([1, 1, 9, 4, None], pa.uint8()),
        "sea_water_temperature_qc_source": pa.array([1, 1, 9, 4, 4], pa.int8()),
        "split": ["train", "train", "test", "train", "validation"],
        "source_file": ["a.nc"] * 5})
    rel = "data/part-0.parquet"
    (folder / "data").mkdir(parents=True)
    pq.write_table(table, folder / rel)
    files = [store.FileRecord(path=rel, rows=5, bytes=(folder / rel).stat().st_size,
                              sha256=hashlib.sha256((folder / rel).read_bytes()).hexdigest())]
    version = store.VersionRecord(version_id="v1", dataset="qc", run_id="r1", path=str(folder),
                                  manifest_sha256="", rows=5, bytes=0, file_count=1)
    return manifest_mod.Manifest.build(
        store.DatasetRecord(name="qc", title="QC test", licence="CC-BY-4.0", owner_name="tests"),
        version, store.RunRecord(run_id="r1", dataset="qc"), files, [], table.schema,
        {"attributions": []})


def test_qc_flags_splits_and_null_depth(tmp_path):
    manifest = _qc_version(tmp_path)
    stats = card_stats.scan(manifest, str(tmp_path))
    assert stats.qc == {"sea_water_temperature_qc": {"1": 2, "4": 1, "9": 1, "null": 1},
                        "sea_water_temperature_qc_source": {"1": 2, "4": 2, "9": 1}}
    assert stats.splits == {"train": 3, "test": 1, "validation": 1}
    assert stats.per_day == {"2024-03-01": 2, "2024-03-02": 2, "2024-03-04": 1}
    assert "depth" not in stats.coverage_dict()
    md = render_markdown(manifest, stats)
    assert "| sea_water_temperature_qc | 4 (fail) | 1 |" in md
    assert "| sea_water_temperature_qc_source | 4 | 2 |" in md  # a source scale: no QARTOD name
    assert "| validation | 1 |" in md
    assert "| depth | not reported (null) |" in md
    labels, counts, unit = card_html.time_series(stats.per_day)
    assert (labels, counts.tolist(), unit) == (
        ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"], [2, 2, 0, 1], "day")


# --- text ----------------------------------------------------------------------------------------
def test_markdown_card_of_real_data_carries_attribution_units_and_validation(cmems):
    _, version, manifest = cmems
    stats = card_stats.scan(manifest, version.path)
    md = render_markdown(manifest, stats, release="1.1.0",
                              changelog=["2 files changed", "sea_water_salinity: units clarified"])
    assert f"- Required attribution: {COPERNICUS}" in md
    assert "Release 1.1.0" in md
    assert "| sea_water_salinity | float | 1e-3 | sea_water_salinity | so (1e-3) |" in md
    for suite in manifest.validation:
        assert f"| {suite['suite']} | passed |" in md
    assert "- sea_water_salinity: units clarified" in md
    assert "2025-09-24T00:00:00Z to 2025-09-25T00:00:00Z" in md


def test_html_is_self_contained(demo):
    _, version, manifest = demo
    page = card_html.render_html(manifest, card_stats.scan(manifest, version.path), changelog=[])
    for needle in ("src=", "href=", "url(", "@import", "<script", "<link"):
        assert needle not in page
    assert page.count("<svg") == 2 + 4  # time bars, map, four variable histograms
    assert "Synthetic test data" in page and "no changes" in page


# --- writing, the command, and a real render -------------------------------------------------------
def test_write_card_and_command(cmems, tmp_path):
    _, version, _ = cmems
    from pipelines.cli import card as card_commands
    from pipelines.cli import card as cli_card

    parser = argparse.ArgumentParser()
    cli_card.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["card", f"{version.dataset}@{version.version_id}", "--out",
                              str(tmp_path), "--change", "first release"])
    args.warehouse, args.catalog, args.actor = str(Path(version.path).parents[3]), None, None

    class Console:
        def __init__(self):
            self.lines = []

        def print(self, text):
            self.lines.append(text)

    console = Console()
    assert card_commands.cmd_card(args, console) == 0
    assert any("croissant.json" in line for line in console.lines)
    assert COPERNICUS in (tmp_path / card.MD_NAME).read_text()
    assert "first release" in (tmp_path / card.HTML_NAME).read_text()
    assert (Path(version.path) / "croissant.json").exists()


def _chromium() -> str:
    return require_chromium()


def test_card_renders_in_headless_chromium(cmems, tmp_path):
    from PIL import Image

    catalog, version, _ = cmems
    _md, html_path = card.write_card(catalog, version, str(tmp_path), release="1.0.0",
                                     changelog=["first release"])
    png = tmp_path / "card.png"

    subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={png}", "--window-size=1280,2400", Path(html_path).as_uri()],
                   # not captured: chromium's helper processes inherit the pipes and keep
                   # them open for seconds after the screenshot is written
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[:2] == (2400, 1280)
    background = np.array([0xF4, 0xF7, 0xF9])
    drawn = np.any(np.abs(image.astype(int) - background) > 8, axis=2).mean()
    assert drawn > 0.2  # header, panels and plots cover a good part of the page
    packed = image.astype(np.int32) @ np.array([65536, 256, 1], dtype=np.int32)
    assert len(np.unique(packed)) > 200  # text and plots, not a flat fill
