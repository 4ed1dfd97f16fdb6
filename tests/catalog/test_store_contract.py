"""One behaviour suite for the catalog contract, run against every backend (SQLite, PostgreSQL)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import re
import threading

import pytest
import sqlalchemy as sa

from catalog.exceptions import (
    DatasetLockedError,
    DatasetNotFoundError,
    DuplicateError,
    InvalidRecordError,
    RunNotFoundError,
    RunStateError,
    UnknownCatalogSchemeError,
    VersionNotFoundError,
)
from catalog.store import (
    DatasetRecord,
    FileRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)

UTC = dt.timezone.utc


@pytest.fixture
def cat(catalog_url):
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.close()


def _t(minute: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, 12, minute, 30, 123456, tzinfo=UTC)


DS = DatasetRecord(name="argo_t", title="Argo temperature", description="profiles",
                   licence="CC-BY-4.0", owner_name="Ocean Team", owner_email="o@example.org",
                   attribution="Argo", classification="public", created_at=_t(0))


def _run(run_id: str = "r1", dataset: str = "argo_t", **kw) -> RunRecord:
    return RunRecord(run_id=run_id, dataset=dataset, recipe_path="recipes/a.yaml",
                     recipe_sha256="ab" * 32, parameters={"bbox": [1, 2], "n": 3},
                     code_version="0.1.0+g1234", runner="DirectRunner", started_at=_t(1), **kw)


def _files() -> list[FileRecord]:
    return [
        FileRecord(path="date=2024-01-01/part-aaaaaaaaaaaa-000000-000.parquet", sha256="1" * 64,
                   rows=10, bytes=1000, partition="date=2024-01-01", source_sha256="a" * 64,
                   time_min=_t(2), time_max=_t(3)),
        FileRecord(path="date=2024-01-02/part-aaaaaaaaaaaa-000001-000.parquet", sha256="2" * 64,
                   rows=5, bytes=600, partition="date=2024-01-02", source_sha256="a" * 64),
    ]


def _version(version_id: str, run_id: str = "r1", minute: int = 5, files=None) -> VersionRecord:
    files = _files() if files is None else files
    return VersionRecord(version_id=version_id, dataset="argo_t", run_id=run_id,
                         path=f"/wh/datasets/argo_t/versions/{version_id}",
                         manifest_sha256="f" * 64, rows=sum(f.rows for f in files),
                         bytes=sum(f.bytes for f in files), file_count=len(files),
                         created_at=_t(minute))


def _ready(cat, run_id: str = "r1"):
    cat.ensure_dataset(DS)
    cat.begin_run(_run(run_id), [SourceRecord(run_id, "/data/b.nc", "b" * 64, 20, "argo"),
                                 SourceRecord(run_id, "/data/a.nc", "a" * 64, 10, "argo")])


# --- ids -------------------------------------------------------------------------------------
def test_ids_are_sortable_and_unique():
    early, late = dt.datetime(2026, 11, 26, 19, 46, 50, tzinfo=UTC), dt.datetime(2027, 1, 1,
                                                                                 tzinfo=UTC)
    vid = new_version_id(early)
    assert re.fullmatch(r"v20261126T194650Z-[0-9a-f]{6}", vid)
    assert re.fullmatch(r"r\d{8}T\d{6}Z-[0-9a-f]{6}", new_run_id())
    assert vid < new_version_id(late)
    assert len({new_version_id(early) for _ in range(50)}) == 50


def test_unknown_scheme_names_the_known_ones():
    with pytest.raises(UnknownCatalogSchemeError, match="sqlite"):
        open_catalog("mysql://x/y")


def test_naive_datetimes_are_refused():
    with pytest.raises(InvalidRecordError, match="naive"):
        DatasetRecord(name="x", created_at=dt.datetime(2024, 1, 1))


# --- datasets --------------------------------------------------------------------------------
def test_dataset_upsert_round_trip_keeps_created_at(cat):
    cat.ensure_dataset(DS)
    assert cat.datasets() == [DS]
    changed = dataclasses.replace(DS, title="New title", licence="CC0-1.0", created_at=_t(9))
    cat.ensure_dataset(changed)
    cat.ensure_dataset(dataclasses.replace(DS, name="other"))
    got = cat.datasets()
    assert [d.name for d in got] == ["argo_t", "other"]
    assert got[0] == dataclasses.replace(changed, created_at=DS.created_at)
    assert got[0].created_at.tzinfo is not None and got[0].created_at.utcoffset() == dt.timedelta(0)


# --- runs and sources ------------------------------------------------------------------------
def test_run_round_trip(cat):
    _ready(cat)
    got = cat.run("r1")
    assert got == _run("r1")  # status "running", parameters JSON round-trips
    assert [s.uri for s in cat.sources("r1")] == ["/data/a.nc", "/data/b.nc"]
    assert cat.sources("r1")[0] == SourceRecord("r1", "/data/a.nc", "a" * 64, 10, "argo")
    cat.finish_run("r1", status="succeeded", report_path="/wh/_runs/r1/report.json",
                   counts={"rows_in": 100, "rows_out": 90, "rows_dropped": 6, "rows_rejected": 4})
    done = cat.run("r1")
    assert (done.status, done.rows_in, done.rows_out, done.rows_dropped, done.rows_rejected) == (
        "succeeded", 100, 90, 6, 4)
    assert done.report_path == "/wh/_runs/r1/report.json" and done.error is None
    assert done.ended_at is not None and done.ended_at >= done.started_at
    assert [r.run_id for r in cat.runs("argo_t")] == ["r1"]


def test_run_errors(cat):
    with pytest.raises(DatasetNotFoundError, match="argo_t"):
        cat.begin_run(_run("r1"), [])
    _ready(cat)
    with pytest.raises(DuplicateError, match="r1"):
        cat.begin_run(_run("r1"), [])
    with pytest.raises(InvalidRecordError, match="ended_badly"):
        cat.finish_run("r1", status="ended_badly", counts={})
    with pytest.raises(InvalidRecordError, match="rows_lost"):
        cat.finish_run("r1", status="failed", counts={"rows_lost": 1})
    with pytest.raises(RunNotFoundError, match="r9"):
        cat.finish_run("r9", status="failed", counts={})
    with pytest.raises(RunNotFoundError, match="r9"):
        cat.run("r9")
    cat.finish_run("r1", status="failed", counts={}, error="boom")
    assert cat.run("r1").error == "boom"
    with pytest.raises(RunStateError, match="already 'failed'"):
        cat.finish_run("r1", status="succeeded", counts={})


def test_abandon_stale_runs(cat):
    _ready(cat, "r1")
    cat.begin_run(_run("r2"), [])
    cat.begin_run(_run("r3"), [])
    cat.finish_run("r3", status="succeeded", counts={})
    cat.acquire_lock("argo_t", "r1")
    probed = []

    def is_alive(run: RunRecord) -> bool:
        probed.append(run.run_id)
        return run.run_id == "r2"

    assert cat.abandon_stale_runs("argo_t", is_alive) == ["r1"]
    assert sorted(probed) == ["r1", "r2"]  # finished runs are not probed
    assert [cat.run(r).status for r in ("r1", "r2", "r3")] == ["abandoned", "running", "succeeded"]
    assert "abandoned" in cat.run("r1").error
    cat.acquire_lock("argo_t", "r2", is_alive=lambda r: True)  # r1's lock went with it


# --- versions and files ----------------------------------------------------------------------
def test_versions_files_latest(cat):
    _ready(cat, "r1")
    cat.begin_run(_run("r2"), [])
    v1, v2 = _version("v1", "r1", minute=5), _version("v2", "r2", minute=7, files=_files()[:1])
    cat.commit_version(v1, _files())
    cat.commit_version(v2, _files()[:1])
    assert cat.versions("argo_t") == [v1, v2]
    assert cat.version("argo_t", "latest") == v2
    assert cat.version("argo_t", "v1") == v1
    assert cat.files("v1") == sorted(_files(), key=lambda f: f.path)
    assert cat.run("r1").version_id == "v1"
    with pytest.raises(VersionNotFoundError, match=r"'v9'.*v1, v2"):
        cat.version("argo_t", "v9")
    with pytest.raises(VersionNotFoundError, match="v9"):
        cat.files("v9")
    with pytest.raises(DatasetNotFoundError, match="argo_t"):
        cat.versions("nope")


def test_latest_of_a_dataset_without_versions(cat):
    cat.ensure_dataset(DS)
    with pytest.raises(VersionNotFoundError, match="none yet"):
        cat.version("argo_t", "latest")


def test_commit_version_checks(cat):
    _ready(cat)
    with pytest.raises(InvalidRecordError, match="rows=16 but files sum to 15"):
        cat.commit_version(dataclasses.replace(_version("v1"), rows=16), _files())
    cat.commit_version(_version("v1"), _files())
    with pytest.raises(DuplicateError, match="v1"):
        cat.commit_version(_version("v1"), _files())
    cat.finish_run("r1", status="succeeded", counts={})
    with pytest.raises(RunStateError, match="succeeded"):
        cat.commit_version(_version("v2"), _files())
    with pytest.raises(RunNotFoundError, match="r7"):
        cat.commit_version(_version("v3", run_id="r7"), _files())


def test_commit_version_is_one_transaction(cat):
    _ready(cat)
    broken = [_files()[0], dataclasses.replace(_files()[1], sha256=None)]  # NOT NULL violation
    with pytest.raises(sa.exc.IntegrityError):
        cat.commit_version(_version("v1", files=broken), broken)
    assert cat.versions("argo_t") == []  # the version row rolled back with its files
    assert cat.run("r1").version_id is None


# --- the dataset lock ------------------------------------------------------------------------
def test_lock_contention_and_release(cat):
    _ready(cat, "r1")
    cat.begin_run(_run("r2"), [])
    cat.acquire_lock("argo_t", "r1")
    cat.acquire_lock("argo_t", "r1")  # re-entrant
    with pytest.raises(DatasetLockedError, match=rf"run r1 \(host .*, pid {os.getpid()}") as err:
        cat.acquire_lock("argo_t", "r2")
    assert err.value.holder_run_id == "r1"
    cat.release_lock("argo_t", "r2")  # not the holder: no effect
    with pytest.raises(DatasetLockedError):
        cat.acquire_lock("argo_t", "r2")
    cat.release_lock("argo_t", "r1")
    cat.acquire_lock("argo_t", "r2")
    cat.acquire_lock("other", "r1")  # locks are per dataset


def test_stale_lock_holders_are_taken_over(cat):
    _ready(cat, "r1")
    cat.begin_run(_run("r2"), [])
    cat.begin_run(_run("r3"), [])
    cat.acquire_lock("argo_t", "r1")
    cat.acquire_lock("argo_t", "r2", is_alive=lambda run: run.run_id != "r1")
    with pytest.raises(DatasetLockedError, match="r2"):
        cat.acquire_lock("argo_t", "r3", is_alive=lambda run: True)
    cat.finish_run("r2", status="failed", counts={})  # finished but forgot to release
    cat.acquire_lock("argo_t", "r3", is_alive=lambda run: True)


def test_lock_wait_until_released(cat):
    _ready(cat, "r1")
    cat.acquire_lock("argo_t", "r1")
    release = threading.Timer(0.3, cat.release_lock, args=("argo_t", "r1"))
    release.start()
    try:
        cat.acquire_lock("argo_t", "r2", wait_seconds=30)
    finally:
        release.cancel()
    with pytest.raises(DatasetLockedError, match="r2"):
        cat.acquire_lock("argo_t", "r1")


def _race_for_lock(url, run_id, barrier, results, done):
    catalog = open_catalog(url)
    barrier.wait(timeout=60)
    try:
        catalog.acquire_lock("argo_t", run_id)
        results.put((run_id, "won"))
    except DatasetLockedError as err:
        results.put((run_id, f"locked:{err.holder_run_id}"))
    done.wait(timeout=60)  # stay alive so that the winner is not judged stale
    catalog.close()


def test_two_processes_race_for_the_lock(catalog_url):
    catalog = open_catalog(catalog_url)  # tables exist before the racers start
    catalog.close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results, done = ctx.Barrier(2), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_race_for_lock, args=(catalog_url, rid, barrier, results, done))
             for rid in ("ra", "rb")]
    for p in procs:
        p.start()
    try:
        outcome = dict(results.get(timeout=120) for _ in procs)
    finally:
        done.set()
        for p in procs:
            p.join(timeout=60)
    winners = [rid for rid, o in outcome.items() if o == "won"]
    assert len(winners) == 1, outcome
    loser = ({"ra", "rb"} - set(winners)).pop()
    assert outcome[loser] == f"locked:{winners[0]}"
    assert all(p.exitcode == 0 for p in procs)


def test_optional_fields_may_be_none(cat):
    before = dt.datetime.now(UTC)
    cat.ensure_dataset(DatasetRecord(name="argo_t", title="T", owner_email=None,
                                     attribution=None, classification=None, created_at=None))
    [got] = cat.datasets()
    assert got.owner_email is None and got.attribution is None
    assert got.created_at >= before.replace(microsecond=0)  # filled in on first insert
    cat.begin_run(dataclasses.replace(_run("r1"), recipe_path=None, code_version=None), [])
    assert cat.run("r1").recipe_path is None
