"""manifest.json: build, canonical write, read back, checksum."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pytest

from catalog.exceptions import ManifestError
from catalog.storage.manifest import build_manifest, read_manifest, write_manifest
from catalog.store import DatasetRecord, FileRecord, RunRecord, SourceRecord, VersionRecord
from connectors.base import ColumnInfo

UTC = dt.timezone.utc
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
    return build_manifest(dataset, VERSION, RUN, FILES, SOURCES, SCHEMA,
                          {"validation": {"success": True, "failed": 0}} if extra is None
                          else extra)


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
    assert read_manifest(str(tmp_path / "v1"), expected_sha256=sha) == m
    # same content, same bytes: the checksum identifies the version
    assert write_manifest(dict(reversed(list(m.items()))), str(tmp_path / "again"))[1] == sha


def test_read_errors(tmp_path):
    with pytest.raises(ManifestError, match="no readable manifest"):
        read_manifest(str(tmp_path / "nowhere"))
    write_manifest(_manifest(), str(tmp_path))
    with pytest.raises(ManifestError, match="differs"):
        read_manifest(str(tmp_path), expected_sha256="0" * 64)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not UTF-8 JSON"):
        read_manifest(str(tmp_path))


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
    assert read_manifest(str(tmp_path))["extra"] == {"checked_at": "2024-01-01T12:00:00Z",
                                                    "day": "2024-01-01"}
