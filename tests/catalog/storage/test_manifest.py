"""manifest.json: build, canonical write, read back, checksum."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.exceptions import ManifestError
from catalog.storage.manifest import (
    FileEntry,
    Manifest,
    Owner,
    RowCounts,
    SourceEntry,
    canonical_bytes,
    write_manifest,
)
from catalog.store import DatasetRecord, FileRecord, RunRecord, SourceRecord, VersionRecord
from connectors.base import ColumnInfo

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
DATASET = {"name": "argo_t", "title": "Température Argo", "licence": "CC-BY-4.0",
           "owner": {"name": "Ocean Team", "email": "o@example.org"}, "attribution": "Argo",
           "classification": "public"}
RUN = RunRecord(run_id="r1", dataset="argo_t", recipe_path="recipes/argo.yaml",
                recipe_sha256="c" * 64, parameters={"bbox": [1, 2, 3, 4]}, code_version="0.1.0",
                runner="DirectRunner", started_at=T0, rows_in=20, rows_out=15, rows_dropped=3,
                rows_rejected=2)
FILES = [
    FileRecord("date=2024-01-02/part-b.parquet", "2" * 64, 5, 500, "date=2024-01-02", "a" * 64,
               T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1, hours=1)),
    FileRecord("date=2024-01-01/part-a.parquet", "1" * 64, 10, 900, "date=2024-01-01", "a" * 64,
               T0, T0 + dt.timedelta(hours=2)),
]
SOURCES = [SourceRecord("r1", "/data/z.nc", "a" * 64, 123, "argo"),
           SourceRecord("r1", "/data/a.nc", "b" * 64, 45, "argo")]
VERSION = VersionRecord(version_id="v1", dataset="argo_t", run_id="r1", path="/wh/v1",
                        manifest_sha256="", rows=15, bytes=1400, file_count=2, created_at=T0)
SCHEMA = pa.schema([
    pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("sea_water_temperature", pa.float32(),
             metadata=ColumnInfo("sea_water_temperature", "variable", units="degree_Celsius")
             .metadata()),
])


def _manifest(extra=None, dataset=DATASET):
    """The JSON-ready dict of a built manifest (what write_manifest takes)."""
    return Manifest.build(dataset, VERSION, RUN, FILES, SOURCES, SCHEMA,
                          {"validation": {"success": True, "failed": 0}} if extra is None
                          else extra).to_json()


def test_manifest_content():
    m = _manifest()
    assert m["dataset"] == DATASET
    assert m["version"] == {"id": "v1", "created_at": "2024-01-01T12:00:00Z", "state": "draft"}
    assert m["run"]["recipe_sha256"] == "c" * 64
    assert m["run"]["parameters"] == {"bbox": [1, 2, 3, 4]}
    assert m["rows"] == {"in": 20, "out": 15, "dropped": 3, "rejected": 2, "written": 15}
    assert m["bytes"] == 1400
    assert [f["path"] for f in m["files"]] == ["date=2024-01-01/part-a.parquet",
                                              "date=2024-01-02/part-b.parquet"]
    assert m["files"][0]["time_max"] == "2024-01-01T14:00:00Z"
    assert [s["uri"] for s in m["sources"]] == ["/data/a.nc", "/data/z.nc"]
    assert m["schema"][1] == {"name": "sea_water_temperature", "type": "float", "nullable": True,
                              "metadata": {"haina.role": "variable",
                                           "haina.units": "degree_Celsius"}}
    assert m["extra"] == {"validation": {"success": True, "failed": 0}}


def test_dataset_record_is_accepted():
    rec = DatasetRecord(name="argo_t", title="T", licence="CC0-1.0", owner_name="O",
                        owner_email="o@x.org", created_at=T0)
    assert _manifest(dataset=rec)["dataset"]["owner"] == {"name": "O", "email": "o@x.org"}


def test_write_read_round_trip_is_canonical(tmp_path):
    m = _manifest()
    uri, sha = write_manifest(m, str(tmp_path / "v1"))
    data = (tmp_path / "v1" / "manifest.json").read_bytes()
    assert uri == str(tmp_path / "v1" / "manifest.json")
    assert sha == hashlib.sha256(data).hexdigest()
    assert data.endswith(b"}\n") and "Température".encode() in data  # UTF-8, not \u escapes
    assert data == (json.dumps(json.loads(data), sort_keys=True, ensure_ascii=False, indent=2)
                    + "\n").encode()
    assert Manifest.read(str(tmp_path / "v1"), expected_sha256=sha).to_json() == m
    # same content, same bytes: the checksum identifies the version
    assert write_manifest(dict(reversed(list(m.items()))), str(tmp_path / "again"))[1] == sha


def test_read_errors(tmp_path):
    with pytest.raises(ManifestError, match="no readable manifest"):
        Manifest.read(str(tmp_path / "nowhere"))
    write_manifest(_manifest(), str(tmp_path))
    with pytest.raises(ManifestError, match="differs"):
        Manifest.read(str(tmp_path), expected_sha256="0" * 64)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not UTF-8 JSON"):
        Manifest.read(str(tmp_path))


def test_build_errors(tmp_path):
    with pytest.raises(ManifestError, match="'other'"):
        _manifest(dataset={**DATASET, "name": "other"})
    with pytest.raises(ManifestError, match="NaN"):
        write_manifest(_manifest(extra={"score": float("nan")}), str(tmp_path))
    with pytest.raises(ManifestError, match="not JSON serialisable"):
        write_manifest(_manifest(extra={"obj": object()}), str(tmp_path))


def test_datetimes_in_extra_are_iso_utc(tmp_path):
    m = _manifest(extra={"checked_at": T0, "day": dt.date(2024, 1, 1)})
    write_manifest(m, str(tmp_path))
    assert Manifest.read(str(tmp_path)).extra == {"checked_at": "2024-01-01T12:00:00Z",
                                                    "day": "2024-01-01"}


# --- the typed Manifest: one reader, today's bytes --------------------------------------------
#: sha256 of the canonical bytes the writer produced before the typed Manifest existed, for
#: these inputs (computed with the dict-building writer of commit 283209f): the bytes, and so
#: every stored manifest_sha256, must not change
SHA_BEFORE = {"recipe": "94b2d94a71ab3ef437fa4a9a56cc1e783a985c76c4b08db3029629406fcdb46f",
              "record": "d32f430abcb320f71603218f3f7444518be308a50aa4df950c325caefd0a3c2b"}
EXTRA = {"validation": {"success": True, "failed": 0}, "checked_at": T0}
RECORD = DatasetRecord(name="argo_t", title="T", licence="CC0-1.0", owner_name="O",
                       owner_email="o@x.org", created_at=T0)


@pytest.mark.parametrize("kind, dataset", [("recipe", DATASET), ("record", RECORD)])
def test_build_writes_the_bytes_it_always_wrote(kind, dataset):
    built = Manifest.build(dataset, VERSION, RUN, FILES, SOURCES, SCHEMA, EXTRA)
    assert hashlib.sha256(built.canonical_bytes()).hexdigest() == SHA_BEFORE[kind]
    assert canonical_bytes(Manifest.build(dataset, VERSION, RUN, FILES, SOURCES, SCHEMA,
                                          EXTRA).to_json()) == built.canonical_bytes()


def test_read_gives_typed_sections(tmp_path):
    _uri, sha = Manifest.build(DATASET, VERSION, RUN, FILES, SOURCES, SCHEMA,
                               {"splits": {"fractions": {"train": 0.8, "test": 0.2}},
                                "attributions": ["Argo"]}).write(str(tmp_path))
    m = Manifest.read(str(tmp_path), expected_sha256=sha)
    assert (m.dataset.name, m.dataset.owner, m.version.id) == (
        "argo_t", Owner("Ocean Team", "o@example.org"), "v1")
    assert m.rows == RowCounts(read=20, out=15, dropped=3, rejected=2, written=15)
    assert [f.path for f in m.data_files] == ["date=2024-01-01/part-a.parquet",
                                             "date=2024-01-02/part-b.parquet"]
    assert m.files[0] == FileEntry("date=2024-01-01/part-a.parquet", "1" * 64, 10, 900,
                                   "date=2024-01-01", "a" * 64, "2024-01-01T12:00:00Z",
                                   "2024-01-01T14:00:00Z", None)
    assert m.sources[0] == SourceEntry("/data/a.nc", "b" * 64, 45, "argo", "r1", 0)
    assert (m.schema[1].units, m.schema[1].role) == ("degree_Celsius", "variable")
    assert m.split_fractions == {"train": 0.8, "test": 0.2} and m.attributions == ["Argo"]
    assert m.quarantine_files == () and m.carried_files == {}


#: a manifest as early writers made it: no content_sha256, sources without run_id or entry
#: index, carried files at the top of extra, no dataset description, and a key no reader knows
OLD = {
    "manifest_format": 1, "bytes": 900, "future": {"x": 1},
    "dataset": {"name": "d", "title": "T", "licence": "CC0-1.0", "owner": {"name": "O"}},
    "version": {"id": "v0", "created_at": "2024-01-01T12:00:00Z", "state": "released"},
    "run": {"id": "r0", "recipe_path": "r.yaml", "recipe_sha256": "c" * 64,
            "code_version": "0.0.1", "runner": "DirectRunner", "parameters": {},
            "started_at": "2024-01-01T11:00:00Z"},
    "rows": {"in": 10, "out": 10, "dropped": 0, "rejected": 0, "written": 10},
    "schema": [{"name": "time", "type": "timestamp[us, tz=UTC]", "nullable": True,
                "metadata": {}}],
    "files": [{"path": "data/a.parquet", "sha256": "1" * 64, "rows": 10, "bytes": 900,
               "partition": "", "source_sha256": "a" * 64, "time_min": None,
               "time_max": None},
              {"path": "quarantine/q.parquet", "sha256": "2" * 64, "rows": 1, "bytes": 80,
               "partition": "quarantine", "source_sha256": "a" * 64, "time_min": None,
               "time_max": None}],
    "sources": [{"uri": "/s/a.nc", "sha256": "a" * 64, "size": 5, "kind": "netcdf_grid"}],
    "extra": {"carried_files": {"data/a.parquet": "v-1"}},
}


def test_an_older_manifest_reads_and_re_serialises_to_its_own_bytes():
    data = canonical_bytes(OLD)
    m = Manifest.from_bytes(data)
    assert m.canonical_bytes() == data and m.to_json() == OLD
    assert m.files[0].content_sha256 is None and m.sources[0].index == 0
    assert m.carried_files == {"data/a.parquet": "v-1"}
    assert [f.path for f in m.quarantine_files] == ["quarantine/q.parquet"]
    assert m.extras == {"future": {"x": 1}} and m.dataset.description is None


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["files"][0].update(rows="10"), r"files\[0\]\.rows is '10', not int"),
    (lambda m: m["files"][1].pop("path"), r"files\[1\] has no 'path'"),
    (lambda m: m["dataset"].pop("name"), r"dataset has no 'name'"),
    (lambda m: m.pop("version"), r"manifest has no 'version'"),
    (lambda m: m["schema"].append("x"), r"schema\[1\] is 'x', not a JSON object"),
    (lambda m: m["sources"][0].update(size=True), r"sources\[0\]\.size is True, not int"),
])
def test_a_malformed_manifest_names_the_key(edit, message):
    broken = json.loads(json.dumps(OLD))
    edit(broken)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(broken)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=50, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=6), _JSON, max_size=4),
       dropped=st.sets(st.sampled_from(["time_max", "time_min", "sha256", "rows"])),
       unknown=st.dictionaries(st.sampled_from(["zz", "new_key", "ÿ"]), _JSON, max_size=2))
def test_any_manifest_round_trips_byte_for_byte(extra, dropped, unknown):
    doc = json.loads(json.dumps(OLD))
    doc["extra"] = extra
    for key in dropped:
        doc["files"][0].pop(key, None)
    doc["files"][1].update(unknown)
    data = canonical_bytes(doc)
    assert Manifest.from_bytes(data).canonical_bytes() == data


@pytest.mark.parametrize("path", ["/etc/passwd", "../other/x.parquet", "data/../../x"])
def test_a_file_path_outside_the_version_folder_is_refused(path):
    broken = json.loads(json.dumps(OLD))
    broken["files"][0]["path"] = path
    with pytest.raises(ManifestError, match=r"files\[0\]\.path .*(not a relative|climbs out)"):
        Manifest.from_json(broken)
