"""One behaviour suite for the catalog contract, run against every backend (SQLite, PostgreSQL,
memory). Every abstract method of :class:`catalog.store.Catalog` is called here:
``test_the_suite_calls_every_method_of_the_contract`` fails when one is added without a test."""
from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import multiprocessing
import os
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog.audit import log as audit
from catalog.exceptions import (
    CatalogNotFoundError,
    CatalogReadOnlyError,
    DatasetLockedError,
    DatasetNotFoundError,
    DuplicateError,
    InvalidRecordError,
    LockNotHeldError,
    ReleaseConflictError,
    RunNotFoundError,
    RunStateError,
    TransitionError,
    UnknownCatalogSchemeError,
    VersionNotFoundError,
)
from catalog.memory import MemoryCatalog
from catalog.releases import states
from catalog.sql.backend import SqlCatalog
from catalog.store import (
    Catalog,
    DatasetRecord,
    FileRecord,
    LineageEventRecord,
    ReleaseRecord,
    RunRecord,
    SourceRecord,
    SourceUse,
    VersionMove,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)

UTC = dt.UTC


@pytest.fixture
def cat(any_catalog_url):
    catalog = open_catalog(any_catalog_url)
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


def test_a_reader_never_creates_a_catalog_and_sees_what_a_writer_stored(any_catalog_url):
    with pytest.raises(CatalogNotFoundError):
        open_catalog(any_catalog_url, create=False)
    writer = open_catalog(any_catalog_url)
    writer.ensure_dataset(DS)
    reader = open_catalog(any_catalog_url, create=False)
    try:
        assert reader.datasets() == [DS]
        assert [e.action for e in reader.audit_entries()] == ["dataset.create"]
    finally:
        reader.close()
        writer.close()


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
    refused = InvalidRecordError if isinstance(cat, MemoryCatalog) else sa.exc.IntegrityError
    with pytest.raises(refused):
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


def test_source_counts_are_stored_per_entry(cat):
    _ready(cat)
    cat.record_source_counts("r1", {
        "/data/a.nc": {"rows_in": 10, "rows_out": 8, "rows_dropped": 1, "rows_quarantined": 1},
        "/data/b.nc#0": {"uri": "/data/b.nc", "source_index": 0, "rows_in": 20, "rows_out": 20,
                         "rows_dropped": 0, "rows_quarantined": 0}})
    a, b = cat.sources("r1")
    assert (a.rows_in, a.rows_out, a.rows_dropped, a.rows_quarantined) == (10, 8, 1, 1)
    assert (b.rows_in, b.rows_out, b.rows_dropped, b.rows_quarantined) == (20, 20, 0, 0)


# --- lock holder, lease renewal, an operator's unlock --------------------------------------------
def test_lock_holder_renew_and_break(cat):
    _ready(cat, "r1")
    cat.begin_run(_run("r2"), [])
    assert cat.lock_holder("argo_t") is None
    cat.acquire_lock("argo_t", "r1")
    holder = cat.lock_holder("argo_t")
    assert (holder.dataset, holder.run_id, holder.pid) == ("argo_t", "r1", os.getpid())
    assert holder.lease_expires_at > holder.acquired_at
    renewed = cat.renew_lock("argo_t", "r1", 600)
    assert renewed is not None and renewed > holder.lease_expires_at
    assert cat.lock_holder("argo_t").lease_expires_at == renewed
    assert cat.renew_lock("argo_t", "r2", 600) is None  # not the holder
    broken = cat.break_lock("argo_t", reason="host died")
    assert broken.run_id == "r1" and cat.lock_holder("argo_t") is None
    assert cat.run("r1").status == "abandoned" and "host died" in cat.run("r1").error
    assert cat.renew_lock("argo_t", "r1", 600) is None  # its lock is gone
    with pytest.raises(LockNotHeldError, match="not locked"):
        cat.break_lock("argo_t")
    assert [e.action for e in cat.audit_entries(action="lock.*")] == ["lock.break"]


# --- releases and transitions ------------------------------------------------------------------
def _committed(cat, *ids: str) -> list[VersionRecord]:
    _ready(cat, "r0")
    done = []
    for minute, vid in enumerate(ids, start=5):
        run_id = f"r-{vid}"
        cat.begin_run(_run(run_id), [])
        cat.commit_version(_version(vid, run_id, minute=minute), _files())
        done.append(cat.version("argo_t", vid))
    return done


def _release_of(version: VersionRecord, semver: str, previous: str | None = None,
                notes: str | None = None) -> tuple[ReleaseRecord, VersionMove]:
    record = ReleaseRecord(dataset=version.dataset, semver=semver, version_id=version.version_id,
                           released_at=_t(30), actor="alice", notes=notes,
                           manifest_sha256=version.manifest_sha256, bump="FIRST",
                           previous=previous, changelog=["first release"])
    allowed, target = states.TRANSITIONS["release"]
    return record, VersionMove("release", version.dataset, version.version_id, allowed, target,
                               semver, notes)


def _moved(version: VersionRecord, action: str, semver: str | None,
           reason: str | None = None) -> VersionMove:
    allowed, target = states.TRANSITIONS[action]
    return VersionMove(action, version.dataset, version.version_id, allowed, target, semver,
                       reason)


def test_record_release_and_read_it_back(cat):
    cat.actor = "alice"
    v1, v2 = _committed(cat, "v1", "v2")
    assert cat.releases("argo_t") == [] and cat.release_of("v1") is None
    record, move = _release_of(v1, "1.9.0", notes="first")
    cat.record_release(record, move)
    assert cat.version("argo_t", "v1").state == "released"
    assert cat.version("argo_t", "1.9.0") == cat.version("argo_t", "v1")  # a semver is a ref
    assert cat.releases("argo_t") == [record] and cat.release_of("v1") == record
    [move1] = cat.transitions("argo_t")
    assert (move1.version_id, move1.from_state, move1.to_state, move1.semver, move1.actor,
            move1.reason) == ("v1", "draft", "released", "1.9.0", "alice", "first")
    second, move = _release_of(v2, "1.10.0", previous="1.9.0")
    cat.record_release(second, move)
    third, move = _release_of(_committed_more(cat, "v3"), "1.11.0", previous="1.9.0")
    with pytest.raises(ReleaseConflictError, match="latest release is now 1.10.0, not 1.9.0"):
        cat.record_release(third, move)  # ordered as semvers: as text 1.9.0 would be highest
    assert [r.semver for r in cat.releases("argo_t")] == ["1.9.0", "1.10.0"]
    cat.mark_documented("argo_t", "1.9.0", ["card.md", "card.html", "croissant.json"])
    assert cat.release_of("v1").documented_at is not None
    assert cat.release_of("v2").documented_at is None
    [doc] = cat.audit_entries(action="release.documents")
    assert (doc.target, doc.details["version_id"], doc.details["files"]) == (
        "argo_t@1.9.0", "v1", ["card.md", "card.html", "croissant.json"])


def _committed_more(cat, vid: str, minute: int = 20) -> VersionRecord:
    cat.begin_run(_run(f"r-{vid}"), [])
    cat.commit_version(_version(vid, f"r-{vid}", minute=minute), _files())
    return cat.version("argo_t", vid)


def test_release_conflicts_change_nothing(cat):
    v1, v2 = _committed(cat, "v1", "v2")
    record, move = _release_of(v1, "1.0.0")
    cat.record_release(record, move)
    with pytest.raises(ReleaseConflictError, match="v1 is already released"):
        cat.record_release(*_release_of(v1, "2.0.0", previous="1.0.0"))
    with pytest.raises(ReleaseConflictError, match="semver 1.0.0 is already taken by version v1"):
        cat.record_release(*_release_of(v2, "1.0.0", previous="1.0.0"))
    with pytest.raises(ReleaseConflictError, match="latest release is now 1.0.0, not None"):
        cat.record_release(*_release_of(v2, "1.5.0"))
    assert cat.version("argo_t", "v2").state == "draft"
    assert len(cat.transitions("argo_t")) == 1 and len(cat.releases("argo_t")) == 1
    assert [e.action for e in cat.audit_entries(action="version.*")] == [
        "version.commit", "version.commit", "version.release"]


def test_a_newest_only_release_refuses_a_draft_overtaken(cat):
    v1, v2 = _committed(cat, "v1", "v2")
    cat.record_release(*_release_of(v2, "1.0.0"))
    with pytest.raises(ReleaseConflictError, match=r"older than version v2 \(1.0.0\)"):
        cat.record_release(*_release_of(v1, "1.1.0", previous="1.0.0"), newest_only=True)
    assert cat.version("argo_t", "v1").state == "draft"
    cat.record_release(*_release_of(v1, "1.1.0", previous="1.0.0"))  # named: allowed


def test_move_version_and_its_rules(cat):
    [v1] = _committed(cat, "v1")
    with pytest.raises(TransitionError, match="cannot deprecate a version that is draft"):
        cat.move_version(_moved(v1, "deprecate", None))
    cat.record_release(*_release_of(v1, "1.0.0"))
    assert cat.move_version(_moved(v1, "deprecate", "1.0.0", "superseded")) == "released"
    assert cat.move_version(_moved(v1, "yank", "1.0.0", "bad salinity")) == "deprecated"
    with pytest.raises(TransitionError, match="a yank is final"):
        cat.move_version(_moved(v1, "undeprecate", "1.0.0"))
    assert cat.version("argo_t", "v1").state == "yanked"
    moves = [(m.from_state, m.to_state, m.reason) for m in cat.transitions("argo_t", "v1")]
    assert moves == [("draft", "released", None), ("released", "deprecated", "superseded"),
                     ("deprecated", "yanked", "bad salinity")]
    assert cat.transitions("argo_t", "v9") == []
    [yank] = cat.audit_entries(action="version.yank")
    assert (yank.target, yank.details["from_state"], yank.details["reason"]) == (
        "argo_t@1.0.0", "deprecated", "bad salinity")


# --- lineage events ----------------------------------------------------------------------------
def _event(run_id: str, event_type: str, version_id: str | None) -> LineageEventRecord:
    payload = {"eventType": event_type, "run": {"runId": "0" * 8}, "nested": {"n": [1, 2.5]}}
    return LineageEventRecord(run_id=run_id, ol_run_id="0" * 36, event_type=event_type,
                              event_time=_t(40), dataset="argo_t", version_id=version_id,
                              event=payload)


def test_lineage_events_round_trip_and_filters(cat):
    _ready(cat, "r1")
    start, complete = _event("r1", "START", None), _event("r1", "COMPLETE", "v1")
    cat.add_lineage_event(start, {"run_id": "r1", "event_type": "START", "bytes": 10})
    cat.add_lineage_event(complete, {"run_id": "r1", "event_type": "COMPLETE", "bytes": 12})
    assert cat.lineage_events(run_id="r1") == [start, complete]
    assert cat.lineage_events(event_type="COMPLETE") == [complete]
    assert cat.lineage_events(dataset="argo_t", version_id="v1") == [complete]
    assert cat.lineage_events(run_id="r9") == []
    emitted = cat.audit_entries(action="lineage.emit")
    assert [(e.target, e.details["bytes"]) for e in emitted] == [("argo_t@None", 10),
                                                                 ("argo_t@v1", 12)]


def test_source_uses_join_sources_runs_and_versions(cat):
    _ready(cat, "r1")  # reads /data/a.nc (a...) and /data/b.nc (b...)
    cat.commit_version(_version("v1", "r1"), _files())
    cat.begin_run(_run("r2"), [SourceRecord("r2", "/data/a.nc", "a" * 64, 10, "argo"),
                               SourceRecord("r2", "/data/a.nc", "a" * 64, 10, "argo",
                                            source_index=1)])  # one file, two entries
    cat.commit_version(_version("v2", "r2", minute=9), _files())
    cat.begin_run(_run("r3"), [SourceRecord("r3", "/data/a.nc", "a" * 64, 10, "argo")])
    uses = cat.source_uses(uris=["/data/a.nc"])
    assert [(u.version_id, u.run_id, u.uri) for u in uses] == [("v1", "r1", "/data/a.nc"),
                                                              ("v2", "r2", "/data/a.nc")]
    assert uses[0] == SourceUse("argo_t", "v1", "draft", _t(5), "r1", "0.1.0+g1234",
                                "/data/a.nc", "a" * 64)
    by_hash = cat.source_uses(sha256s=["B" * 64])  # hashes match in any case
    assert [(u.version_id, u.uri) for u in by_hash] == [("v1", "/data/b.nc")]
    assert cat.source_uses() == []


# --- the audit log -----------------------------------------------------------------------------
def test_every_mutation_is_audited_in_one_chain(cat, tmp_path):
    head_file = str(tmp_path / "wh" / "_audit" / "head.json")
    cat.set_audit_head_file(head_file)
    assert cat.audit_head_file() == head_file
    cat.actor = "bob"
    _ready(cat)
    cat.record_action("policy.change", "argo_t", {"gate": 0.01, "when": _t(1)})
    cat.commit_version(_version("v1"), _files())
    cat.finish_run("r1", status="succeeded", counts={"rows_in": 15})
    got = cat.audit_entries()
    assert [e.action for e in got] == ["dataset.create", "run.start", "policy.change",
                                       "version.commit", "run.end"]
    assert [e.seq for e in got] == [1, 2, 3, 4, 5] and {e.actor for e in got} == {"bob"}
    assert got[2].details == {"gate": 0.01, "when": "2024-01-01T12:01:30.123456Z"}
    assert all(audit.recompute(e) == e.hash for e in got)
    assert [e.prev_hash for e in got[1:]] == [e.hash for e in got[:-1]]
    head, chain = cat.read_audit_chain(lambda head, entries: (head, list(entries)))
    assert head == (5, got[-1].hash) and chain == got
    assert audit.read_head_file(head_file)["seq"] == 5
    report = audit.verify_chain(cat, head_file=head_file)
    assert report.ok and report.entries == 5, report.problems


def test_audit_entries_filters(cat):
    cat.actor = "alice"
    cat.record_action("export", "argo_t", {})
    cat.record_action("policy.change", "argo_t@v1", {})
    cat.actor = "bob"
    cat.record_action("export", "other", {"to": "s3://b/x"})
    assert [e.seq for e in cat.audit_entries(action="export")] == [1, 3]
    assert [e.seq for e in cat.audit_entries(target="argo_t*")] == [1, 2]
    assert [e.seq for e in cat.audit_entries(target="argo_t")] == [1]  # no wildcard: exact
    assert [e.seq for e in cat.audit_entries(actor="bob")] == [3]
    assert [e.seq for e in cat.audit_entries(action="pol*_change")] == []  # _ is no wildcard
    assert [e.seq for e in cat.audit_entries(limit=2)] == [2, 3]
    second = cat.audit_entries()[1].at
    assert [e.seq for e in cat.audit_entries(since=second)] == [2, 3]


def test_a_failed_mutation_leaves_no_audit_entry(cat):
    with pytest.raises(DatasetNotFoundError):
        cat.begin_run(_run("r1"), [])
    assert cat.audit_entries() == []
    assert cat.read_audit_chain(lambda head, entries: (head, list(entries))) == (None, [])


# --- the suite covers the whole contract --------------------------------------------------------
def _methods_called_on_cat() -> set[str]:
    """Names of methods this file calls as ``cat.<name>(...)``."""
    tree = ast.parse(Path(__file__).read_text())
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "cat"}


#: called for every test by the ``cat`` fixture, through open_catalog
_OPENED_BY_THE_FIXTURE = {"from_url"}


def test_the_suite_calls_every_method_of_the_contract():
    covered = _methods_called_on_cat() | _OPENED_BY_THE_FIXTURE
    missing = set(Catalog.__abstractmethods__) - covered
    assert not missing, f"Catalog methods no test of this suite calls: {sorted(missing)}"


def test_every_backend_implements_the_whole_contract():
    for backend in (MemoryCatalog, SqlCatalog):
        assert not backend.__abstractmethods__, backend


def test_a_catalog_opened_read_only_refuses_every_write_alike(any_catalog_url):
    """SQLite (mode=ro), PostgreSQL (read-only sessions) and memory refuse a write through a
    read-only catalog with the same named error, and the reads still work."""
    writer = open_catalog(any_catalog_url)
    writer.ensure_dataset(DatasetRecord(name="ro", title="t"))
    reader = open_catalog(any_catalog_url, create=False, read_only=True)
    try:
        assert [d.name for d in reader.datasets()] == ["ro"]
        with pytest.raises(CatalogReadOnlyError, match="opened read-only"):
            reader.ensure_dataset(DatasetRecord(name="ro2", title="t"))
        assert [d.name for d in reader.datasets()] == ["ro"]
        assert reader.read_audit_chain(lambda head, entries: (head, len(list(entries))))[1] >= 1
    finally:
        reader.close()
        writer.close()
