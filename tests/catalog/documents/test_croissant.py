"""Croissant 1.1 JSON-LD: mlcroissant validates it and loads the same rows as pyarrow."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from examples.qingdao_demo import generate

from catalog import store
from catalog.documents import croissant, manifest_view, output
from catalog.documents.card.stats import scan
from catalog.documents.exceptions import CroissantError
from catalog.storage import manifest as manifest_mod
from pipelines import recipe as recipe_mod
from pipelines.driver import Runner

mlc = pytest.importorskip("mlcroissant")
REPO = Path(__file__).resolve().parents[3]
UTC = dt.UTC
N_ROWS = 40


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
        quality: {enabled: false}
        """))
    return path


@pytest.fixture(scope="module")
def demo_version(tmp_path_factory):
    folder = tmp_path_factory.mktemp("croissant-demo")
    generate(folder / "sources", days=2)
    runner = Runner(recipe_mod.load(_demo_recipe(folder)), warehouse=str(folder / "wh"),
                    catalog=f"sqlite:///{folder / 'wh' / 'catalog.db'}")
    outcome = runner.run()
    return runner.catalog, runner.catalog.version(outcome.dataset, outcome.version_id)


@pytest.fixture(scope="module")
def cmems_version(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("croissant-cmems")
    runner = Runner(recipe_mod.load(REPO / "tests" / "recipes" / "cmems_glo_so.yaml"),
                    warehouse=str(folder / "wh"),
                    catalog=f"sqlite:///{folder / 'wh' / 'catalog.db'}")
    outcome = runner.run()
    return runner.catalog, runner.catalog.version(outcome.dataset, outcome.version_id)


def _first_rows(version_dir: str, manifest: manifest_mod.Manifest, n: int) -> pa.Table:
    """The first ``n`` rows in the order mlcroissant reads a FileSet: files sorted by path."""
    paths = sorted(f.path for f in manifest_view.data_files(manifest))
    table = pa.concat_tables([pq.read_table(Path(version_dir) / p) for p in paths])
    return table.slice(0, n)


def _as_python(value):
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- the demo version, end to end ----------------------------------------------------------------
def test_mlcroissant_validates_and_loads_the_same_rows_as_pyarrow(demo_version):
    catalog, version = demo_version
    path = croissant.write_croissant(catalog, version)
    assert Path(path).parent == Path(version.path)
    dataset = mlc.Dataset(jsonld=path)
    assert not dataset.metadata.ctx.issues.errors
    records = list(itertools.islice(dataset.records(record_set="records"), N_ROWS))
    manifest = manifest_mod.Manifest.read(version.path)
    expected = _first_rows(version.path, manifest, N_ROWS)
    assert len(records) == N_ROWS
    for name in expected.column_names:
        got = [_as_python(r[f"records/{name}"]) for r in records]
        want = expected.column(name).to_pylist()
        if pa.types.is_floating(expected.schema.field(name).type):
            np.testing.assert_array_equal(np.array(got, dtype="f8"), np.array(want, dtype="f8"))
        else:
            assert got == want, name


def test_document_describes_every_data_file_with_its_checksum(demo_version):
    catalog, version = demo_version
    doc = json.loads(Path(croissant.write_croissant(catalog, version)).read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert doc["@type"] == "sc:Dataset"
    assert doc["license"] == "https://spdx.org/licenses/CC0-1.0.html"
    assert doc["version"] == f"0.0.0-draft.{version.version_id}"
    objects = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    data = sorted(p.relative_to(version.path).as_posix()
                  for p in Path(version.path).glob("data/**/*.parquet"))
    assert sorted(o["contentUrl"] for o in objects) == data and len(data) == 2
    for o in objects:
        content = (Path(version.path) / o["contentUrl"]).read_bytes()
        assert o["sha256"] == hashlib.sha256(content).hexdigest()
        assert o["encodingFormat"] == "application/x-parquet"
    fields = {f["name"]: f for f in doc["recordSet"][-1]["field"]}
    assert fields["sea_water_potential_temperature"]["dataType"] == "cr:Float32"
    assert fields["time"]["dataType"] == "sc:DateTime"
    assert "[m s-1]" in fields["eastward_sea_water_velocity"]["description"]
    assert "cm s-1 -> m s-1" in fields["eastward_sea_water_velocity"]["description"]
    assert doc["creditText"] == "Synthetic test data."


def test_release_label_and_coverage(demo_version):
    _, version = demo_version
    manifest = manifest_mod.Manifest.read(version.path)
    stats = scan(manifest, version.path, max_points=0, bins=0)
    doc = croissant.build_croissant(manifest, release="1.2.0", coverage=stats.coverage_dict())
    assert doc["version"] == "1.2.0"
    assert doc["temporalCoverage"] == "2025-07-01T00:00:00Z/2025-07-02T18:00:00Z"
    assert doc["spatialCoverage"]["geo"]["box"].split()[0] == "35.2"


def test_writing_outside_the_version_folder_is_refused(demo_version, tmp_path):
    catalog, version = demo_version
    with pytest.raises(CroissantError, match="outside") as err:
        croissant.write_croissant(catalog, version, str(tmp_path))
    assert "Fix:" in str(err.value)


def test_writing_in_a_parent_folder_keeps_paths_loadable(demo_version):
    catalog, version = demo_version
    parent = str(Path(version.path).parent)
    path = croissant.write_croissant(catalog, version, parent)
    doc = json.loads(Path(path).read_text())
    prefix = Path(version.path).name
    assert all(d["contentUrl"].startswith(prefix + "/data/")
               for d in doc["distribution"] if d["@type"] == "cr:FileObject")
    records = mlc.Dataset(jsonld=path).records(record_set="records")
    assert len(list(itertools.islice(records, 3))) == 3
    Path(path).unlink()


# --- a version with a split column ---------------------------------------------------------------
def _write_split_version(folder: Path) -> dict:
    """Two daily files with a ``split`` column, and the manifest a run would write."""
    schema = pa.schema([
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("latitude", pa.float64()), pa.field("longitude", pa.float64()),
        pa.field("sea_water_temperature", pa.float32(), metadata={
            "haina.units": "degC", "haina.standard_name": "sea_water_temperature",
            "haina.role": "variable"}),
        pa.field("split", pa.string()), pa.field("source_file", pa.string())])
    files, day0 = [], dt.datetime(2025, 1, 1, tzinfo=UTC)
    for d, splits in enumerate((["train", "train", "test"], ["validation", "train", "test"])):
        table = pa.table({
            "time": [day0 + dt.timedelta(days=d, hours=h) for h in range(3)],
            "latitude": [10.0, 10.5, 11.0], "longitude": [-20.0, -20.5, -21.0],
            "sea_water_temperature": pa.array([20.5, 21.0, 21.5], pa.float32()),
            "split": splits, "source_file": ["s.csv"] * 3}, schema=schema)
        rel = f"data/date=2025-01-0{d + 1}/part-{d}.parquet"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / rel)
        files.append(store.FileRecord(path=rel, rows=3, bytes=(folder / rel).stat().st_size,
                                      sha256=hashlib.sha256((folder / rel).read_bytes()).hexdigest(),
                                      partition=rel.split("/")[1]))
    run = store.RunRecord(run_id="r1", dataset="split-test", rows_in=6, rows_out=6)
    version = store.VersionRecord(version_id="v1", dataset="split-test", run_id="r1",
                                  path=str(folder), manifest_sha256="", rows=6, bytes=0,
                                  file_count=2)
    return manifest_mod.Manifest.build(
        store.DatasetRecord(name="split-test", title="Split test", licence="CC-BY-4.0",
                            owner_name="tests"),
        version, run, files, [store.SourceRecord("r1", "s.csv", "0" * 64, 1, "csv")], schema,
        {"attributions": ["Generated using E.U. Copernicus Marine Service Information"]})


def test_split_column_becomes_a_split_record_set_mlcroissant_loads(tmp_path):
    manifest = _write_split_version(tmp_path)
    stats = scan(manifest, str(tmp_path), max_points=0, bins=0)
    assert stats.splits == {"train": 3, "test": 2, "validation": 1}
    doc = croissant.build_croissant(manifest, split_names=sorted(stats.splits))
    splits = doc["recordSet"][0]
    assert splits["dataType"] == "cr:Split"
    assert {r["splits/name"]: r.get("splits/url") for r in splits["data"]} == {
        "test": "cr:TestSplit", "train": "cr:TrainingSplit", "validation": "cr:ValidationSplit"}
    path = output.write_json(doc, str(tmp_path / "croissant.json"), CroissantError)
    dataset = mlc.Dataset(jsonld=path)
    names = sorted(_as_python(r["splits/name"]) for r in dataset.records(record_set="splits"))
    assert names == ["test", "train", "validation"]
    rows = [_as_python(r["records/split"]) for r in dataset.records(record_set="records")]
    assert rows == ["train", "train", "test", "validation", "train", "test"]
    assert "Copernicus" in doc["citeAs"] and doc["license"].endswith("CC-BY-4.0.html")


# --- real data: the attribution a licence requires travels with the dataset -----------------------
def test_cmems_version_carries_its_attribution(cmems_version):
    catalog, version = cmems_version
    path = croissant.write_croissant(catalog, version)
    doc = json.loads(Path(path).read_text())
    required = "Generated using E.U. Copernicus Marine Service Information"
    assert required in doc["creditText"] and required in doc["citeAs"]
    assert doc["license"] == manifest_view.LICENCE_PAGES["LicenseRef-Copernicus-Marine"]
    dataset = mlc.Dataset(jsonld=path)
    first = next(iter(dataset.records(record_set="records")))
    manifest = manifest_mod.Manifest.read(version.path)
    first_file = min(f.path for f in manifest_view.data_files(manifest))
    expected = pq.read_table(Path(version.path) / first_file).column("sea_water_salinity")[0]
    assert _as_python(first["records/sea_water_salinity"]) == pytest.approx(expected.as_py())


# --- pure helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize("arrow, expected", [
    ("float", "cr:Float32"), ("double", "cr:Float64"), ("halffloat", "cr:Float16"),
    ("int8", "cr:Int8"), ("uint8", "cr:UInt8"), ("int64", "cr:Int64"),
    ("timestamp[us, tz=UTC]", "sc:DateTime"), ("date32[day]", "sc:Date"),
    ("bool", "sc:Boolean"), ("string", "sc:Text"), ("large_string", "sc:Text"),
    ("dictionary<values=string, indices=int32, ordered=0>", "sc:Text"),
    ("decimal128(10, 2)", "sc:Float"),
])
def test_data_type(arrow, expected):
    assert croissant.data_type(arrow) == expected


@pytest.mark.parametrize("licence, url", [
    ("CC-BY-4.0", "https://spdx.org/licenses/CC-BY-4.0.html"),
    ("LicenseRef-Copernicus-Marine", manifest_view.LICENCE_PAGES["LicenseRef-Copernicus-Marine"]),
    ("LicenseRef-Unknown-Thing", None), ("", None), (None, None),
])
def test_licence_url(licence, url):
    assert manifest_view.licence_url(licence) == url


def test_unknown_licence_becomes_a_creative_work(tmp_path):
    manifest = _write_split_version(tmp_path)
    manifest = dataclasses.replace(manifest, dataset=dataclasses.replace(
        manifest.dataset, licence="LicenseRef-Unknown-Thing"))
    doc = croissant.build_croissant(manifest)
    assert doc["license"] == {"@type": "sc:CreativeWork", "name": "LicenseRef-Unknown-Thing"}
