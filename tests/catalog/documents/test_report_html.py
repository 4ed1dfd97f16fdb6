"""The HTML validation report: sections, numbers equal to the inputs, no URL, and one render in
headless Chromium. Inputs are GE results built from arrow metrics (synthetic table) and from a
real run of the Copernicus EXEC0220 recipe, with synthetic QC stats (the format of
``expectations.qc.apply.merge_qc_stats``) and quarantine counts."""
from __future__ import annotations

import html.parser
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from catalog.documents.report import render_html, write_report
from expectations.quality_config import QualityConfig
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.gate import evaluate_gate
from expectations.validation.judgement import suite_results
from tests.conftest import require_chromium

REPO = Path(__file__).resolve().parents[3]
FLAGS = ("1", "2", "3", "4", "9")
EXPECTED_SECTIONS = {"gate", "rows", "suites", "qc", "quarantine", "details"}


class Page(html.parser.HTMLParser):
    """Sections, link targets, and the text of every cell carrying data-* attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.links, self.cells, self.svgs = set(), [], {}, 0
        self._open: tuple | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        self.svgs += tag == "svg"
        data = tuple(sorted((k, v) for k, v in attrs.items() if k.startswith("data-")))
        self._open = data or None
        if data:
            self.cells[data] = ""

    def handle_data(self, data):
        if self._open:
            self.cells[self._open] += data

    def handle_endtag(self, tag):
        self._open = None

    def number(self, **data) -> int:
        key = tuple(sorted((f"data-{k}", v) for k, v in data.items()))
        text = self.cells[key]
        return int(text.replace(",", "").strip())


def synthetic_qc(variables, days=40, seed=7) -> dict:
    rng = np.random.default_rng(seed)
    qc, daily, hist = {}, {}, {}
    for var in variables:
        per_day = rng.integers(0, 60, size=(days, 5))
        per_day[:, 0] += 500
        dates = np.datetime64("2012-03-01") + np.arange(days)
        daily[var] = {str(d): dict(zip(FLAGS, map(int, row), strict=True)) for d, row in zip(dates, per_day, strict=True)}
        aggregate = dict(zip(FLAGS, map(int, per_day.sum(axis=0)), strict=True))
        qc[var] = {"gross_range": dict(zip(FLAGS, map(int, rng.integers(0, 9000, 5)), strict=True)),
                   "spike": {"1": 12345, "2": 0, "3": 17, "4": 4, "9": 1000},
                   "aggregate": aggregate}
        counts, edges = np.histogram(rng.normal(15, 3, 4000), bins=30, range=(0, 30))
        hist[var] = {"edges": edges.tolist(), "counts": counts.tolist(), "under": 2, "over": 5,
                     "thresholds": {"fail_min": -2.5, "fail_max": 40.0, "suspect_min": 5.0,
                                    "suspect_max": 25.0}}
    return {"qc": qc, "qc_daily": daily, "hist": hist}


QUARANTINE = {"by_reason": {"time_not_decodable": 30, "outside_bbox": 12},
              "by_source": {"/data/a&b.nc": {"time_not_decodable": 30},
                            "/data/c.nc": {"outside_bbox": 12}}}


def check_page(text: str, info: dict) -> Page:
    page = Page(text)
    assert EXPECTED_SECTIONS <= page.ids
    assert all(link.startswith(("#", "data:")) for link in page.links), page.links
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert "<link" not in text and "@import" not in text
    for var, tests in info["qc"]["qc"].items():
        for test, counts in tests.items():
            for flag in FLAGS:
                assert page.number(var=var, test=test, flag=flag) == counts.get(flag, 0)
            assert page.number(var=var, test=test, flag="total") == sum(counts.values())
            assert page.number(var=var, test="overview", flag=flag) == \
                tests["aggregate"].get(flag, 0)
    for reason, n in info["quarantine"]["by_reason"].items():
        assert page.number(reason=reason) == n
    assert page.number(reason="total") == sum(info["quarantine"]["by_reason"].values())
    for source, per in info["quarantine"]["by_source"].items():
        for reason in info["quarantine"]["by_reason"]:
            assert page.number(source=source, reason=reason) == per.get(reason, 0)
    for key in ("rows_in", "rows_out", "rows_dropped", "rows_quarantined"):
        assert page.number(count=key) == info["counts"][key]
    # per variable: the daily flag fractions and the histogram, plus one overview bar, and the
    # series itself where the run collected it
    assert page.svgs == 3 * len(info["qc"]["qc"]) + len(info["qc"].get("series") or {})
    return page


# --- synthetic GE results ------------------------------------------------------------------
VALUES = np.arange(100, dtype=np.float64)
TABLE = pa.table({"sea_water_temperature": pa.array(VALUES, mask=VALUES < 5)})
SUITES = [{"name": "sea_water_temperature", "expectations": [
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "sea_water_temperature", "min_value": 0, "max_value": 89.5}},
    {"type": "expect_column_max_to_be_between",
     "kwargs": {"column": "sea_water_temperature", "max_value": 50}}]}]


@pytest.fixture
def synthetic_report(tmp_path):
    results = suite_results(SUITES, chunk_metrics(TABLE, compile_checks(SUITES)))
    gate = evaluate_gate(results, QualityConfig(max_failing_fraction=0.05))
    info = {"dataset": "synthetic<t>", "version_id": "v1", "run_id": "r1", "recipe": "r.yaml",
            "counts": {"rows_in": 142, "rows_out": 100, "rows_dropped": 0,
                       "rows_quarantined": 42},
            "qc": synthetic_qc(["sea_water_temperature"]), "quarantine": QUARANTINE}
    return write_report(results, gate, info, tmp_path), info


def test_synthetic_report_sections_and_numbers(synthetic_report):
    (json_path, html_path), info = synthetic_report
    text = html_path.read_text(encoding="utf-8")
    check_page(text, info)
    assert "Gate: FAILED" in text and "2 failing expectations" in text
    assert "synthetic&lt;t&gt;" in text and "synthetic<t>" not in text
    # GE numbers: 100 elements, 10 unexpected (90..99), 5 missing, 10/95 = 10.53 %
    for cell in ("100", "10", "10.53", "5"):
        assert f"<td class='num'>{cell}</td>" in text
    assert "90.0, 91.0" in text and "observed 99.0" in text
    document = json.loads(json_path.read_text())
    assert document["info"]["qc"] == json.loads(json.dumps(info["qc"]))


def test_report_without_qc_or_quarantine_says_so(tmp_path):
    results = suite_results(SUITES, chunk_metrics(TABLE, compile_checks(SUITES)))
    gate = evaluate_gate(results, QualityConfig(max_failing_fraction=1.0,
                                                max_failing_fraction_by_column={}))
    _json, html_path = write_report(results, gate, {"dataset": "d"}, tmp_path)
    text = html_path.read_text()
    assert "No QC flags were computed" in text and "No rows were quarantined" in text
    assert "No row counts recorded" in text and "<svg" not in text


def test_numpy_stats_are_written_as_plain_json(tmp_path):
    info = {"dataset": "d", "qc": {"hist": {"t": {"edges": np.array([0.0, 1.0]),
                                                  "counts": np.array([3]), "under": np.int64(1),
                                                  "over": 0, "thresholds": {}}}}}
    json_path, _ = write_report([], evaluate_gate([], QualityConfig()), info, tmp_path)
    hist = json.loads(json_path.read_text())["info"]["qc"]["hist"]["t"]
    assert hist == {"edges": [0.0, 1.0], "counts": [3], "under": 1, "over": 0, "thresholds": {}}


def test_quarantine_mismatch_is_flagged(tmp_path):
    info = {"dataset": "d", "counts": {"rows_in": 10, "rows_out": 5, "rows_dropped": 0,
                                       "rows_quarantined": 5},
            "quarantine": {"by_reason": {"bad_time": 4}, "by_source": {}}}
    _json, html_path = write_report([], evaluate_gate([], QualityConfig()), info, tmp_path)
    assert "counted 5 quarantined rows but the reasons add up to 4" in html_path.read_text()


def test_report_shows_the_series_and_the_first_flagged_and_quarantined_rows(tmp_path):
    """Row-level view: the values over time with flagged samples marked, the first flagged rows
    of each variable with the tests that flagged them, and the first quarantined records with
    their content -- from the stats QC computes on a planted-event series."""
    import pyarrow.compute as pc

    from expectations.qc.apply import apply_qc, quarantine_rows
    from expectations.qc.config import QCConfig
    from expectations.qc.plan import plan_qc
    from expectations.qc.stats import SAMPLE_ROWS, with_quarantine_sample
    from tests.expectations.qc import planted_support as planted

    table, columns = planted.timeseries()
    result = apply_qc(table, plan_qc(columns, QCConfig(hard_tests=["gross_range"])))
    hard = result.hard_fail
    quarantined = quarantine_rows(result.table.filter(hard), pc.filter(result.reasons, hard))
    stats = with_quarantine_sample(result.stats, quarantined)
    assert quarantined.num_rows == 3  # 45 degC, +inf degC and 45 psu
    counts = {"rows_in": table.num_rows, "rows_out": table.num_rows - quarantined.num_rows,
              "rows_dropped": 0, "rows_quarantined": quarantined.num_rows}
    reasons = pc.value_counts(quarantined.column("reason")).to_pylist()
    info = {"dataset": "planted", "counts": counts, "qc": stats,
            "quarantine": {"by_reason": {r["values"]: r["counts"] for r in reasons},
                           "by_source": {}}}
    json_path, html_path = write_report([], evaluate_gate([], QualityConfig()), info, tmp_path)
    text = html_path.read_text(encoding="utf-8")
    page = check_page(text, json.loads(json_path.read_text())["info"])
    for var in planted.VARIABLES:
        assert f"{var}: values over time" in text
        rows = text.count(f"<tr data-sample='{var}'>")
        assert rows == len(stats["samples"][var]) == SAMPLE_ROWS
    first = stats["samples"][planted.T][0]
    assert f"<td>{first['time'][:10]} {first['time'][11:19]}</td>" in text
    assert text.count("<tr data-quarantined='qc_fail:") == quarantined.num_rows
    assert "sea_water_temperature=45 failed the gross_range test" in text
    assert "&quot;sea_water_temperature&quot;:45" in text  # the row's content, escaped
    assert page.ids >= EXPECTED_SECTIONS


# --- a real run ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory, shared_data):
    """One in-process run of the EXEC0220 recipe (one Parquet file: fast) into a temp warehouse."""
    from catalog.config import OutputConfig
    from pipelines import recipe as recipe_mod
    from pipelines.driver import Runner

    nc = shared_data / "argo_dsg_netcdf" / "GL_TS_BO_EXEC0220.nc"
    if not nc.is_file():
        pytest.fail(f"{nc} is missing from the shared data folder")
    recipe = recipe_mod.load(REPO / "examples" / "recipes" / "dsg_copernicus_exec0220.yaml")
    recipe = recipe.model_copy(update={"output": OutputConfig(partition_by="none")})
    warehouse = tmp_path_factory.mktemp("warehouse")
    outcome = Runner(recipe, warehouse=str(warehouse)).run()
    return outcome, nc


def test_real_run_report_matches_the_file(real_run, tmp_path):
    import xarray as xr

    outcome, nc = real_run
    document = json.loads(Path(outcome.report_path).with_suffix(".json").read_text())
    info = document["info"]
    info["qc"] = synthetic_qc(["sea_water_temperature", "sea_water_practical_salinity"],
                              days=400)
    info["quarantine"] = QUARANTINE
    info["counts"] = {**info["counts"], "rows_quarantined": 42}
    text = render_html(document)
    (tmp_path / "validation.html").write_text(text, encoding="utf-8")
    check_page(text, info)
    with xr.open_dataset(nc) as ds:
        doxy = ds["DOXY"]  # already mmol m-3, the canonical unit
        rows, missing = int(doxy.size), int(doxy.isnull().sum())
        above = int((doxy > 600).sum())
    row = _expectation_cells(text, "mole_concentration_of_dissolved_molecular_oxygen_in_sea_water")
    assert row[:2] == [str(rows), str(above)] and row[3] == str(missing)
    assert row[2] == f"{100 * above / (rows - missing):.4g}"
    assert info["dataset"] in text and info["version_id"] in text and "Gate: PASSED" in text


def _expectation_cells(text: str, suite: str) -> list[str]:
    section = text.split(f"id='suite-{suite}'")[1].split("</table>")[0]
    return re.findall(r"<td class='num'>([^<]*)</td>", section)[:4]


def _chromium() -> str:
    return require_chromium()


def test_real_report_renders_in_headless_chromium(real_run, tmp_path):
    from PIL import Image

    outcome, _nc = real_run
    document = json.loads(Path(outcome.report_path).with_suffix(".json").read_text())
    document["info"]["qc"] = synthetic_qc(["sea_water_temperature"], days=60)
    document["info"]["quarantine"] = QUARANTINE
    page = tmp_path / "report.html"
    page.write_text(render_html(document), encoding="utf-8")
    png = tmp_path / "report.png"
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
               "--window-size=1280,2000", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 20_000
    image = Image.open(io.BytesIO(png.read_bytes())).convert("RGB")
    assert image.size == (1280, 2000)
    pixels = np.asarray(image)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and plots, not a blank page
    # the flag colours of the plots are on screen: good green and fail red
    for hex_colour in ("#2f9e44", "#e03131"):
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=2) < 12).sum() > 200, hex_colour
