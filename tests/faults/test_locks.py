"""Stale locks: a run that died on another host no longer holds its dataset forever.

Locks carry a lease that the running process renews (catalog.lease.Heartbeat); an expired lease
is taken over by the next run (the dead run marked abandoned, its staging removed), a live one
is reported with its holder, its expiry and the fix, and ``haina unlock`` frees a dataset by
hand, audited. Every test runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest

from catalog import lease
from catalog.audit import log as audit
from catalog.exceptions import DatasetLockedError
from catalog.store import DatasetRecord, RunRecord, open_catalog
from pipelines.cli.app import main
from tests.faults.conftest import NAME, dead_holder

pytestmark = pytest.mark.slow


@pytest.fixture
def cat(catalog_url):
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.close()


def _run_cli(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--catalog", url, *argv])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # rich wraps long lines


# --- the lease, in the catalog ----------------------------------------------------------------
def test_an_expired_lease_of_another_host_is_taken_over(cat, catalog_url):
    dead_holder(catalog_url)
    cat.acquire_lock(NAME, "r-new")
    holder = cat.lock_holder(NAME)
    assert (holder.run_id, holder.host, holder.pid) == ("r-new", socket.gethostname(),
                                                        os.getpid())
    assert holder.lease_expires_at > dt.datetime.now(dt.UTC)
    dead = cat.run("r-dead")
    assert dead.status == "abandoned" and "lease expired" in dead.error
    assert "r-new took the dataset lock over" in dead.error
    [event] = audit.entries(cat, action="lock.takeover")
    assert (event.target, event.details["from_run"], event.details["to_run"],
            event.details["host"]) == (NAME, "r-dead", "r-new", "far-away-host")
    assert [e.target for e in audit.entries(cat, action="run.abandon")] == ["r-dead"]
    assert audit.verify_chain(cat).ok


def test_a_live_lease_of_another_host_is_reported_with_holder_expiry_and_fix(cat, catalog_url):
    dead_holder(catalog_url, lease=dt.timedelta(minutes=10))
    with pytest.raises(DatasetLockedError) as err:
        cat.acquire_lock(NAME, "r-new")
    text = str(err.value)
    for part in ("run r-dead", "host far-away-host", "pid 4242", "its lease runs until",
                 f"haina unlock {NAME}", "--wait"):
        assert part in text, (part, text)
    assert err.value.holder_run_id == "r-dead"
    assert cat.run("r-dead").status == "running"


def test_a_dead_pid_on_this_host_is_taken_over_before_its_lease_ends(cat, catalog_url):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_holder(catalog_url, host=socket.gethostname(), pid=int(gone.stdout),
                lease=dt.timedelta(minutes=10))
    cat.acquire_lock(NAME, "r-new")
    assert cat.lock_holder(NAME).run_id == "r-new"
    assert "is gone" in cat.run("r-dead").error


def test_the_heartbeat_renews_the_lease_and_notices_a_lost_lock(cat):
    cat.ensure_dataset(DatasetRecord(name=NAME, created_at=None))
    cat.begin_run(RunRecord(run_id="r1", dataset=NAME), [])
    cat.acquire_lock(NAME, "r1")
    first = cat.lock_holder(NAME).lease_expires_at
    beat = lease.Heartbeat(cat, NAME, "r1", lease=0.6).start()
    try:
        _until(lambda: cat.lock_holder(NAME).lease_expires_at != first, "a renewal")
        cat.break_lock(NAME, reason="test")
        _until(lambda: beat.lost, "the heartbeat to notice")
    finally:
        beat.stop()
    assert cat.run("r1").status == "abandoned"


def _until(condition, what: str, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def test_lease_seconds_come_from_the_environment():
    assert lease.lease_seconds({}) == lease.DEFAULT_LEASE_SECONDS
    assert lease.lease_seconds({lease.LEASE_ENV: "2.5"}) == 2.5
    for bad in ("0", "-3", "soon", "nan"):
        with pytest.raises(ValueError, match=lease.LEASE_ENV):
            lease.lease_seconds({lease.LEASE_ENV: bad})


# --- runs and the CLI -------------------------------------------------------------------------
def test_the_next_run_takes_over_an_expired_lease_and_succeeds(tmp_warehouse, catalog_url,
                                                               one_day_recipe, capsys):
    dead_holder(catalog_url)
    leftover = tmp_warehouse / "_staging" / "r-dead" / "data"
    leftover.mkdir(parents=True)
    (leftover / "part-0.parquet").write_bytes(b"half a file")

    code, out, err = _run_cli(capsys, catalog_url, "run", str(one_day_recipe))
    assert code == 0, err
    assert "Traceback" not in err
    cat = open_catalog(catalog_url)
    try:
        statuses = {r.run_id: r.status for r in cat.runs(NAME)}
        assert statuses.pop("r-dead") == "abandoned"
        assert list(statuses.values()) == ["succeeded"]
        assert len(cat.versions(NAME)) == 1
        assert cat.lock_holder(NAME) is None
    finally:
        cat.close()
    assert not (tmp_warehouse / "_staging" / "r-dead").exists()
    code, out, err = _run_cli(capsys, catalog_url, "audit", "verify")
    assert code == 0 and "audit log intact" in out, (out, err)


def test_a_run_against_a_live_lease_exits_4_naming_holder_expiry_and_unlock(
        tmp_warehouse, catalog_url, one_day_recipe, capsys):
    dead_holder(catalog_url, lease=dt.timedelta(minutes=10))
    code, _, err = _run_cli(capsys, catalog_url, "run", str(one_day_recipe))
    assert code == 4
    assert "Traceback" not in err
    for part in ("locked by run r-dead", "host far-away-host", "pid 4242",
                 "its lease runs until", f"haina unlock {NAME}"):
        assert part in err, (part, err)
    assert "stale locks are taken over" not in err  # the old, false fix


def test_unlock_frees_the_dataset_abandons_the_run_and_is_audited(tmp_warehouse, catalog_url,
                                                                  capsys):
    dead_holder(catalog_url, lease=dt.timedelta(minutes=10))
    code, out, err = _run_cli(capsys, catalog_url, "--actor", "ops-on-call", "unlock", NAME,
                              "--reason", "host far-away-host was decommissioned")
    assert code == 0, err
    assert "r-dead" in out and "abandoned" in out
    cat = open_catalog(catalog_url)
    try:
        assert cat.lock_holder(NAME) is None
        dead = cat.run("r-dead")
        assert dead.status == "abandoned" and "decommissioned" in dead.error
        [event] = audit.entries(cat, action="lock.break")
        assert (event.actor, event.target, event.details["run_id"], event.details["reason"]) == (
            "ops-on-call", NAME, "r-dead", "host far-away-host was decommissioned")
    finally:
        cat.close()
    code, out, err = _run_cli(capsys, catalog_url, "audit", "verify")
    assert code == 0 and "audit log intact" in out, (out, err)

    code, _, err = _run_cli(capsys, catalog_url, "unlock", NAME)
    assert code == 2 and f"dataset '{NAME}' is not locked" in err
    code, _, err = _run_cli(capsys, catalog_url, "unlock", "no-such-dataset")
    assert code == 2 and "'no-such-dataset' is not in the catalog" in err


def test_unlock_refuses_a_holder_alive_on_this_host_unless_forced(tmp_warehouse, catalog_url,
                                                                   capsys):
    dead_holder(catalog_url, host=socket.gethostname(), pid=os.getpid(),
                lease=dt.timedelta(minutes=10))
    code, _, err = _run_cli(capsys, catalog_url, "unlock", NAME)
    assert code == 4 and f"kill {os.getpid()}" in err and "--force" in err
    code, _, err = _run_cli(capsys, catalog_url, "unlock", NAME, "--force")
    assert code == 0, err
