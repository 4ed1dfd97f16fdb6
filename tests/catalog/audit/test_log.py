"""The audit log on both backends: every mutation is chained, and every tamper case is named."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog.audit import log as audit
from catalog.sql import tables
from catalog.store import DatasetRecord, RunRecord, SourceRecord, open_catalog

# --- two backends (the pattern of test_store_contract.py) -----------------------------------


@pytest.fixture
def head_file(tmp_path) -> str:
    return audit.head_file_uri(str(tmp_path / "wh"))


@pytest.fixture
def cat(catalog_url, head_file):
    catalog = open_catalog(catalog_url)
    audit.use_warehouse(catalog, os.path.dirname(os.path.dirname(head_file)))
    catalog.actor = "alice"
    yield catalog
    catalog.close()


def _sql(cat, statement: str, **params) -> None:
    with cat._engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _five_entries(cat) -> list[audit.AuditEntry]:
    """dataset.create, run.start, run.end, policy.change, export: seqs 1..5."""
    cat.ensure_dataset(DatasetRecord(name="ds", title="T"))
    cat.begin_run(RunRecord(run_id="r1", dataset="ds"),
                  [SourceRecord("r1", "/src/a.nc", "a" * 64, 10, "netcdf_grid")])
    cat.finish_run("r1", status="failed", counts={}, error="boom")
    audit.append(cat, "policy.change", "ds", {"gate": {"max_failing_fraction": 0.01}})
    cat.actor = "bob"
    audit.append(cat, "export", "ds@v1", {"to": "s3://bucket/x"})
    return audit.entries(cat)


def _problem(cat, head_file):
    report = audit.verify_chain(cat, head_file=head_file)
    assert not report.ok
    return report.first


# --- appending -------------------------------------------------------------------------------
def test_every_mutation_is_chained_with_its_actor(cat, head_file):
    got = _five_entries(cat)
    assert [(e.seq, e.action, e.target, e.actor) for e in got] == [
        (1, "dataset.create", "ds", "alice"), (2, "run.start", "r1", "alice"),
        (3, "run.end", "r1", "alice"), (4, "policy.change", "ds", "alice"),
        (5, "export", "ds@v1", "bob")]
    assert got[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(got, got[1:], strict=False))
    # the documented formula, recomputed here by hand for entry 4
    e = got[3]
    payload = json.dumps([4, e.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "alice", "policy.change",
                          "ds", {"gate": {"max_failing_fraction": 0.01}}],
                         sort_keys=True, separators=(",", ":")).encode()
    import hashlib
    assert e.hash == hashlib.sha256(got[2].hash.encode() + payload).hexdigest()
    assert got[2].details["status"] == "failed" and got[2].details["error"] == "boom"
    report = audit.verify_chain(cat, head_file=head_file)
    assert report.ok and report.entries == 5 and report.head_row == (5, got[-1].hash)
    assert json.loads(Path(head_file).read_text()) == {"seq": 5, "hash": got[-1].hash,
                                          "at": audit.iso(got[-1].at),
                                          "catalog": cat.identity}


def test_an_entry_rolls_back_with_its_mutation(cat, head_file):
    _five_entries(cat)
    before = Path(head_file).read_text()
    with pytest.raises(RuntimeError), cat._engine.begin() as conn:
        cat._mutated(conn, "policy.change", "ds", {"x": 1})
        raise RuntimeError("the change failed after its audit entry")
    assert [e.seq for e in audit.entries(cat)] == [1, 2, 3, 4, 5]
    assert Path(head_file).read_text() == before
    audit.append(cat, "policy.change", "ds", {"x": 2})
    assert audit.verify_chain(cat, head_file=head_file).ok


def test_actor_comes_from_the_environment_and_is_never_empty(catalog_url, monkeypatch):
    monkeypatch.setenv("HAINA_ACTOR", "ci-bot")
    cat = open_catalog(catalog_url)
    cat.ensure_dataset(DatasetRecord(name="ds"))
    cat.actor = ""
    audit.append(cat, "export", "ds", {})
    assert [e.actor for e in audit.entries(cat)] == ["ci-bot", "ci-bot"]
    cat.close()


def test_details_are_stored_exactly_as_hashed(cat, head_file):
    import datetime as dt
    audit.append(cat, "export", "ds", {"nan": float("nan"), "when": dt.datetime(
        2026, 1, 2, tzinfo=dt.UTC), "tags": {"b", "a"}})
    (entry,) = audit.entries(cat)
    assert entry.details == {"nan": "nan", "when": "2026-01-02T00:00:00.000000Z",
                             "tags": ["a", "b"]}
    assert audit.verify_chain(cat, head_file=head_file).ok


def test_concurrent_writers_do_not_fork_the_chain(catalog_url, head_file):
    open_catalog(catalog_url).close()  # tables first: concurrent CREATE TABLE races on PostgreSQL
    errors = []

    def writer(name: str) -> None:
        try:
            catalog = open_catalog(catalog_url)
            audit.use_warehouse(catalog, os.path.dirname(os.path.dirname(head_file)))
            catalog.actor = name
            for i in range(8):
                audit.append(catalog, "export", f"{name}-{i}", {"i": i})
            catalog.close()
        except Exception as err:  # noqa: BLE001 - surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cat = open_catalog(catalog_url)
    got = audit.entries(cat)
    assert [e.seq for e in got] == list(range(1, 33))
    assert {e.actor for e in got} == {"w0", "w1", "w2", "w3"}
    report = audit.verify_chain(cat, head_file=head_file)
    assert report.ok, report.problems
    assert report.head_file_seq == 32
    cat.close()


def test_filters(cat):
    _five_entries(cat)
    assert [e.seq for e in audit.entries(cat, action="run.*")] == [2, 3]
    assert [e.seq for e in audit.entries(cat, actor="bob")] == [5]
    assert [e.seq for e in audit.entries(cat, target="ds*")] == [1, 4, 5]
    assert [e.seq for e in audit.entries(cat, limit=2)] == [4, 5]
    third = audit.entries(cat)[2].at
    assert [e.seq for e in audit.entries(cat, since=third)] == [3, 4, 5]


# --- tampering: each case named by its seq ---------------------------------------------------
def test_edited_entry(cat, head_file):
    _five_entries(cat)
    _sql(cat, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    first = _problem(cat, head_file)
    assert first.seq == 2 and "edited" in first.problem


def test_edited_details(cat, head_file):
    _five_entries(cat)
    _sql(cat, "UPDATE audit_log SET details = :d WHERE seq = 4",
         d='{"gate": {"max_failing_fraction": 0.5}}')
    assert _problem(cat, head_file).seq == 4


def test_edited_entry_with_its_hash_recomputed(cat, head_file):
    got = _five_entries(cat)
    e = got[1]
    forged = audit.entry_hash(e.prev_hash, audit.canonical_payload(
        e.seq, e.at, "mallory", e.action, e.target, e.details))
    _sql(cat, "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 2", h=forged)
    first = _problem(cat, head_file)
    assert first.seq == 3 and "before it" in first.problem


def test_deleted_entry(cat, head_file):
    _five_entries(cat)
    _sql(cat, "DELETE FROM audit_log WHERE seq = 3")
    first = _problem(cat, head_file)
    assert first.seq == 3 and "missing" in first.problem


def test_deleted_last_entry_is_caught_by_the_head_row(cat, head_file):
    _five_entries(cat)
    _sql(cat, "DELETE FROM audit_log WHERE seq = 5")
    first = _problem(cat, head_file)
    assert first.seq == 5 and "log ends at 4" in first.problem


def test_deleted_last_entry_and_head_row_updated_is_caught_by_the_head_file(cat, head_file):
    got = _five_entries(cat)
    _sql(cat, "DELETE FROM audit_log WHERE seq = 5")
    _sql(cat, "UPDATE audit_head SET seq = 4, hash = :h", h=got[3].hash)
    first = _problem(cat, head_file)
    assert first.seq == 5 and "head file" in first.problem and "deleted" in first.problem


def test_inserted_entry_in_the_middle(cat, head_file):
    got = _five_entries(cat)
    # make room at seq 3 (two steps: a primary key is checked row by row)
    _sql(cat, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3")
    _sql(cat, "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000")
    fake = audit.new_entry(3, got[1].hash, "mallory", "run.end", "r1", {"status": "succeeded"})
    with cat._engine.begin() as conn:
        conn.execute(tables.audit_log_t.insert().values(**fake.__dict__))
    first = _problem(cat, head_file)
    assert first.seq == 4  # the well-formed forgery at 3 moves the old 3, whose seq is hashed


def test_appended_entry_outside_the_listener(cat, head_file):
    got = _five_entries(cat)
    fake = audit.new_entry(6, got[-1].hash, "mallory", "export", "ds", {})
    with cat._engine.begin() as conn:
        conn.execute(tables.audit_log_t.insert().values(**fake.__dict__))
    first = _problem(cat, head_file)
    assert first.seq == 6 and "inserted" in first.problem
    # also moving the head row forward leaves the head file behind
    _sql(cat, "UPDATE audit_head SET seq = 6, hash = :h", h=fake.hash)
    first = _problem(cat, head_file)
    assert first.seq == 6 and "head file" in first.problem


def test_reordered_entries(cat, head_file):
    _five_entries(cat)
    _sql(cat, "UPDATE audit_log SET seq = -2 WHERE seq = 2")
    _sql(cat, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(cat, "UPDATE audit_log SET seq = 3 WHERE seq = -2")
    first = _problem(cat, head_file)
    assert first.seq == 2


def test_deleted_head_row_is_named_and_blocks_appends(cat, head_file):
    _five_entries(cat)
    _sql(cat, "DELETE FROM audit_head")
    assert "audit_head row is missing" in _problem(cat, head_file).problem
    with pytest.raises(audit.AuditError, match="audit_head row is missing or reset"):
        audit.append(cat, "export", "ds", {})


def test_edited_head_file(cat, head_file):
    _five_entries(cat)
    head = json.loads(Path(head_file).read_text())
    head["hash"] = "f" * 64
    Path(head_file).write_text(json.dumps(head))
    first = _problem(cat, head_file)
    assert first.seq == 5 and "head file" in first.problem


def test_empty_log_verifies(cat, head_file):
    report = audit.verify_chain(cat, head_file=head_file)
    assert report.ok and report.entries == 0
