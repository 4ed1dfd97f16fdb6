"""``verify_version`` / ``verify_folder``: a clean version passes; every kind of damage is named."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from catalog.storage import files as files_mod
from catalog.storage import manifest as manifest_mod
from catalog.storage import verify, writer
from catalog.store import (
    DatasetRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)

UTC = dt.UTC
SOURCES = {"a": hashlib.sha256(b"source a").hexdigest(), "b": hashlib.sha256(b"source b").hexdigest()}


# --- two backends (the pattern of test_store_contract.py) -----------------------------------


# --- a small real version --------------------------------------------------------------------
def _table(day: int, rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64(f"2025-07-{day:02d}T00:00", "us")
    return pa.table({
        "time": pa.array(start + np.arange(rows) * np.timedelta64(60, "s"),
                         pa.timestamp("us", tz="UTC")),
        "sea_water_temperature": pa.array(rng.normal(15, 2, rows).astype("float32")),
        "source_file": pa.array([f"/src/{seed}.nc"] * rows),
    })


@dataclasses.dataclass
class Built:
    catalog: object
    version: VersionRecord
    folder: Path

    def file(self, rel: str) -> Path:
        return self.folder / rel


def build_version(catalog, root: Path) -> Built:
    """Three data files and one quarantine file, with manifest and catalog rows, as a run makes."""
    catalog.ensure_dataset(DatasetRecord(name="buoys", title="Buoys", licence="CC0-1.0"))
    run_id, version_id = new_run_id(), new_version_id()
    sources = [SourceRecord(run_id, f"/src/{k}.nc", sha, 100, "netcdf_grid")
               for k, sha in SOURCES.items()]
    catalog.begin_run(RunRecord(run_id=run_id, dataset="buoys"), sources)
    folder = root / "datasets" / "buoys" / "versions" / version_id
    kv = writer.footer_metadata("buoys", version_id, run_id)
    plan = [("data/date=2025-07-01/part-a.parquet", "date=2025-07-01", "a", _table(1, 500, 1)),
            ("data/date=2025-07-02/part-a.parquet", "date=2025-07-02", "a", _table(2, 300, 2)),
            ("data/date=2025-07-02/part-b.parquet", "date=2025-07-02", "b", _table(2, 200, 3)),
            ("quarantine/part-b.parquet", "quarantine", "b", _table(3, 7, 4))]
    files = []
    for rel, partition, src, table in plan:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        written = writer.write_table(table, str(folder / rel), kv_metadata=kv)
        files.append(written.record(rel, partition, SOURCES[src]))
    data = [f for f in files if f.partition != "quarantine"]
    version = VersionRecord(version_id=version_id, dataset="buoys", run_id=run_id,
                            path=str(folder), manifest_sha256="", rows=sum(f.rows for f in data),
                            bytes=sum(f.bytes for f in data), file_count=len(data))
    manifest = manifest_mod.Manifest.build(
        DatasetRecord(name="buoys", title="Buoys"), version, catalog.run(run_id), files,
        sources, plan[0][3].schema, {})
    _uri, sha = manifest.write(str(folder))
    version = dataclasses.replace(version, manifest_sha256=sha)
    catalog.commit_version(version, files)
    (folder / "summary.json").write_text("{}")  # run leftovers outside data/ are not strays
    return Built(catalog, version, folder)


@pytest.fixture
def built(catalog_url, tmp_path):
    catalog = open_catalog(catalog_url)
    yield build_version(catalog, tmp_path / "wh")
    catalog.close()


@pytest.fixture
def local(tmp_path):
    """SQLite only, for checks that do not depend on the backend."""
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield build_version(catalog, tmp_path / "wh")
    catalog.close()


def _verify(b: Built, **kw) -> verify.VerifyReport:
    return verify.verify_version(b.catalog, "buoys", b.version.version_id, **kw)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _sql(b: Built, statement: str, **params) -> None:
    with b.catalog._engine.begin() as conn:
        conn.execute(sa.text(statement), params)


# --- clean -----------------------------------------------------------------------------------
def test_a_clean_version_passes(built):
    report = _verify(built)
    assert report.ok, report.mismatches
    assert report.files == 4 and report.rows == 1000
    on_disk = list(built.folder.rglob("*.parquet"))
    assert report.bytes == sum(p.stat().st_size for p in on_disk)
    assert report.bytes_read == report.bytes  # each byte read once


def test_a_copied_folder_verifies_against_its_manifest_only(local, tmp_path):
    copy = tmp_path / "elsewhere" / "v"
    shutil.copytree(local.folder, copy)
    report = verify.verify_folder(str(copy))
    assert report.ok, report.mismatches
    assert report.mode == "folder" and any("manifest-only" in n for n in report.notes)
    sha = hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest()
    assert verify.verify_folder(str(copy), manifest_sha256=sha).ok
    bad = verify.verify_folder(str(copy), manifest_sha256="0" * 64)
    assert (bad.first.check, bad.first.expected, bad.first.actual) == (
        "manifest.sha256", "0" * 64, sha)


# --- damage, each named ----------------------------------------------------------------------
def test_one_flipped_byte_in_a_data_file(built):
    rel = "data/date=2025-07-02/part-a.parquet"
    path = built.file(rel)
    _flip(path, path.stat().st_size // 2)
    report = _verify(built)
    manifest = json.loads((built.folder / "manifest.json").read_text())
    listed = next(f["sha256"] for f in manifest["files"] if f["path"] == rel)
    assert (report.first.check, report.first.path) == ("file.sha256", rel)
    assert report.first.expected == listed
    assert report.first.actual == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {m.path for m in report.mismatches} == {rel}


def test_a_flipped_byte_in_the_footer_length_makes_the_file_unreadable(local):
    rel = "data/date=2025-07-01/part-a.parquet"
    path = local.file(rel)
    _flip(path, path.stat().st_size - 6)  # inside the 4-byte footer length
    checks = {m.check for m in _verify(local).mismatches if m.path == rel}
    assert {"file.sha256", "file.rows", "file.parquet"} <= checks


def test_an_edited_manifest(built):
    path = built.folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["dataset"]["title"] = "Edited"
    path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    report = _verify(built)
    assert (report.first.check, report.first.path) == ("manifest.sha256", "manifest.json")
    assert report.first.expected == built.version.manifest_sha256
    assert report.first.actual == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_edited_manifest_file_entry_is_also_caught_without_the_catalog(local):
    path = local.folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][0]["rows"] = 499
    path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    first = verify.verify_folder(str(local.folder)).first
    assert (first.check, first.path, first.expected, first.actual) == (
        "file.rows", "data/date=2025-07-01/part-a.parquet", 499, 500)
    checks = [m.check for m in _verify(local).mismatches]
    assert checks[0] == "manifest.sha256" and "catalog.rows" in checks


def test_a_deleted_file(local):
    rel = "quarantine/part-b.parquet"
    local.file(rel).unlink()
    report = _verify(local)
    assert (report.first.check, report.first.path) == ("file.missing", rel)


def test_a_stray_file(local):
    stray = local.file("data/date=2025-07-02/part-extra.parquet")
    shutil.copy(local.file("data/date=2025-07-02/part-b.parquet"), stray)
    report = _verify(local)
    assert [(m.check, m.path) for m in report.mismatches] == [
        ("file.stray", "data/date=2025-07-02/part-extra.parquet")]


def test_a_stray_file_in_quarantine_of_a_copy(local, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(local.folder, copy)
    (copy / "quarantine" / "notes.txt").write_text("x")
    report = verify.verify_folder(str(copy))
    assert (report.first.check, report.first.path) == ("file.stray", "quarantine/notes.txt")


def test_a_catalog_file_row_edited(built):
    rel = "data/date=2025-07-02/part-b.parquet"
    _sql(built, "UPDATE files SET rows = 201 WHERE path = :p", p=rel)
    report = _verify(built)
    assert (report.first.check, report.first.path, report.first.expected,
            report.first.actual) == ("file.rows", rel, 201, 200)
    assert "catalog" in report.first.note


def test_a_file_whose_source_is_not_a_source_of_the_run(local):
    rel = "data/date=2025-07-01/part-a.parquet"
    _sql(local, "UPDATE files SET source_sha256 = :s WHERE path = :p", s="c" * 64, p=rel)
    checks = {(m.check, m.path) for m in _verify(local).mismatches}
    assert ("lineage.file_source", rel) in checks
    assert ("catalog.source_sha256", rel) in checks


def test_a_run_without_sources(local):
    _sql(local, "DELETE FROM sources")
    report = _verify(local)
    assert report.first.check == "lineage.run_sources"
    assert report.first.path == f"runs/{local.version.run_id}"


def test_a_file_from_another_version(local):
    """A file swapped for one of another version: hash differs, and its footer says so."""
    rel = "data/date=2025-07-01/part-a.parquet"
    kv = writer.footer_metadata("buoys", "v-other", "r-other")
    writer.write_table(_table(1, 500, 1), str(local.file(rel)), kv_metadata=kv)
    checks = {m.check for m in _verify(local).mismatches if m.path == rel}
    assert {"file.sha256", "footer.haina.version"} <= checks


def test_the_manifest_hash_recorded_at_release(local):
    release = pytest.importorskip("catalog.releases.lifecycle")
    release.record_release(local.catalog, local.version, "1.0.0")
    assert _verify(local).ok
    _sql(local, "UPDATE releases SET manifest_sha256 = :s", s="e" * 64)
    first = _verify(local).first
    assert (first.check, first.expected, first.note) == (
        "manifest.sha256", "e" * 64, "releases table vs file")


def test_a_carried_over_file_may_keep_its_earlier_version_in_the_footer(local, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(local.folder, copy)
    rel = "data/date=2025-07-01/part-a.parquet"
    kv = writer.footer_metadata("buoys", "v-earlier", "r-earlier")
    written = writer.write_table(_table(1, 500, 1), str(copy / rel), kv_metadata=kv)
    manifest = json.loads((copy / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == rel)
    entry.update(sha256=written.sha256, bytes=written.bytes)
    manifest["bytes"] = sum(f["bytes"] for f in manifest["files"]
                            if f["partition"] != "quarantine")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    first = verify.verify_folder(str(copy)).first
    assert (first.check, first.path, first.actual) == ("footer.haina.version", rel, "v-earlier")
    manifest["extra"]["carried_files"] = {rel: "v-earlier"}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert verify.verify_folder(str(copy)).ok


# --- one pass per file -----------------------------------------------------------------------
class _Counting:
    def __init__(self, raw, counter):
        self._raw, self._counter = raw, counter

    def readinto(self, buf):
        n = self._raw.readinto(buf)
        self._counter[0] += n or 0
        return n

    def read(self, size=-1):
        data = self._raw.read(size)
        self._counter[0] += len(data)
        return data

    def seek(self, *args):
        return self._raw.seek(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._raw.close()


@pytest.mark.parametrize("block_bytes", [1, 7, 4096, 1 << 20])
def test_scan_reads_each_byte_once_and_matches_an_independent_read(local, monkeypatch,
                                                                   block_bytes):
    rel = "data/date=2025-07-01/part-a.parquet"
    path = local.file(rel)
    counter = [0]
    real_open = files_mod._open_local
    monkeypatch.setattr(files_mod, "_open_local", lambda p: _Counting(real_open(p), counter))
    scan = verify.scan_file(str(path), rel, block_bytes=block_bytes)
    size = path.stat().st_size
    footer = int.from_bytes(path.read_bytes()[-8:-4], "little") + 8
    assert scan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scan.rows == pq.read_metadata(path).num_rows == 500
    assert scan.footer["haina.version"] == local.version.version_id
    # a tail of two blocks holds the footer, or the footer alone is read again
    again = 0 if 2 * block_bytes >= footer else footer + (8 if 2 * block_bytes < 8 else 0)
    assert counter[0] == scan.bytes_read == size + again


def test_a_truncated_file_is_not_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    scan = verify.scan_file(str(path), "x.parquet")
    assert scan.rows is None and "not a Parquet file" in scan.error


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(verify.VerifyError, match="no such version folder"):
        verify.verify_folder(str(tmp_path / "nope"))
