"""PostgreSQL connections killed under a run: reconnect, or fail cleanly (exit 3, one line).

Before, a catalog connection terminated by the server ended the run with a SQLAlchemy traceback
and could leave the run ``running`` and the dataset locked. Now idle pooled connections are
checked before use (pre-ping), operations safe to repeat get one more try on a new connection,
and any other lost connection is one named error (exit 3) after which the run is marked failed
and its lock released.

Only this test's connections are terminated: the catalog URL gives them an application_name of
their own, and pg_terminate_backend picks them by it.
"""
from __future__ import annotations

import secrets
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from catalog.exceptions import CatalogUnavailableError
from catalog.store import DatasetRecord, RunRecord, open_catalog
from tests.conftest import psycopg_url
from tests.faults.conftest import HAINA, NAME

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("catalog_url", ["postgresql"],
                                                        indirect=True)]


@pytest.fixture
def app() -> str:
    return f"haina_t_{secrets.token_hex(4)}"


@pytest.fixture
def observer(catalog_url):
    """The test's own connection (another application_name: never terminated)."""
    base, _, schema = catalog_url.partition("?schema=")
    engine = sa.create_engine(psycopg_url(base), connect_args={
        "application_name": "haina_test_observer", "options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()


def _terminate(observer: sa.Engine, app: str) -> int:
    with observer.connect() as conn:
        return len(conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'test' "
            "AND pid <> pg_backend_pid() AND application_name = :app"), {"app": app}).all())


def _waiting_on_a_lock(observer: sa.Engine, app: str) -> bool:
    with observer.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
            "AND wait_event_type = 'Lock'"), {"app": app}).scalar() > 0


def _until(condition, what: str, proc: subprocess.Popen | None = None,
           seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


# --- the catalog ----------------------------------------------------------------------------
def test_idle_connections_killed_are_replaced_silently(catalog_url, app, observer):
    cat = open_catalog(f"{catalog_url}&application_name={app}")
    try:
        cat.ensure_dataset(DatasetRecord(name=NAME, created_at=None))
        assert _terminate(observer, app) >= 1  # the pooled connection, idle
        assert [d.name for d in cat.datasets()] == [NAME]
        cat.begin_run(RunRecord(run_id="r1", dataset=NAME), [])  # a write, not repeated
        assert cat.run("r1").status == "running"
    finally:
        cat.close()


def test_a_query_cut_mid_flight_is_retried_when_it_is_safe_to_repeat(catalog_url, app,
                                                                     observer):
    cat = open_catalog(f"{catalog_url}&application_name={app}")
    try:
        cat.ensure_dataset(DatasetRecord(name=NAME, created_at=None))
        cat.acquire_lock(NAME, "r-first")
        with observer.connect() as blocker:  # holds the lock row: renewals wait behind it
            blocker.execute(sa.text("SELECT 1 FROM locks FOR UPDATE"))
            result: list = []
            renew = threading.Thread(target=lambda: result.append(
                cat.renew_lock(NAME, "r-first", 60)))
            renew.start()
            _until(lambda: _waiting_on_a_lock(observer, app), "the renewal to wait")
            assert _terminate(observer, app) >= 1
            blocker.rollback()
            renew.join(timeout=120)
        assert result and result[0] is not None  # renewed on a second connection
    finally:
        cat.close()


def test_a_write_cut_mid_flight_is_one_named_error(catalog_url, app, observer):
    cat = open_catalog(f"{catalog_url}&application_name={app}")
    try:
        cat.ensure_dataset(DatasetRecord(name=NAME, created_at=None))
        cat.begin_run(RunRecord(run_id="r1", dataset=NAME), [])
        with observer.connect() as blocker:
            blocker.execute(sa.text("SELECT 1 FROM runs FOR UPDATE"))
            errors: list = []

            def finish():
                try:
                    cat.finish_run("r1", status="succeeded", counts={})
                except CatalogUnavailableError as err:
                    errors.append(err)
            writer = threading.Thread(target=finish)
            writer.start()
            _until(lambda: _waiting_on_a_lock(observer, app), "the write to wait")
            _terminate(observer, app)
            blocker.rollback()
            writer.join(timeout=120)
        [err] = errors
        assert err.exit_code == 3 and err.disconnect
        assert "connection to the catalog database was lost" in str(err)
        cat.finish_run("r1", status="failed", counts={}, error="lost")  # the next one works
    finally:
        cat.close()


# --- a whole run ----------------------------------------------------------------------------
def _spawn(url: str, recipe, app: str, env: dict) -> subprocess.Popen:
    import os

    return subprocess.Popen([*HAINA, "--catalog", f"{url}&application_name={app}", "run",
                             str(recipe)], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _running_run(observer: sa.Engine) -> str | None:
    try:
        with observer.connect() as conn:
            return conn.execute(sa.text("SELECT run_id FROM runs WHERE status = 'running'")
                                ).scalar()
    except sa.exc.ProgrammingError:  # the run has not created the tables yet
        return None


def _assert_settled(url: str, tmp_warehouse) -> list[str]:
    cat = open_catalog(url)
    try:
        statuses = [r.status for r in cat.runs(NAME)]
        assert "running" not in statuses
        assert cat.lock_holder(NAME) is None
    finally:
        cat.close()
    staging = tmp_warehouse / "_staging"
    assert not staging.exists() or not any(staging.iterdir())
    return statuses


def test_a_run_whose_connection_is_cut_mid_write_fails_cleanly_with_exit_3(
        tmp_warehouse, catalog_url, one_day_recipe, app, observer):
    proc = _spawn(catalog_url, one_day_recipe, app, {"HAINA_WAREHOUSE": str(tmp_warehouse)})
    _until(lambda: _running_run(observer) is not None, "the run row", proc)
    with observer.connect() as blocker:  # the run's commit waits on its run row ...
        # NO KEY: rows that only refer to the run (sources, lineage events) are not held up,
        # so the first statement to wait is the commit's UPDATE of the run row
        blocker.execute(sa.text("SELECT 1 FROM runs WHERE status = 'running' "
                                "FOR NO KEY UPDATE"))
        _until(lambda: _waiting_on_a_lock(observer, app), "the run to wait on its row", proc)
        assert _terminate(observer, app) >= 1  # ... and loses its connection there
        blocker.rollback()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, (out, err)
    assert "Traceback" not in err and "PendingRollbackError" not in err
    flat = " ".join(err.split())
    assert flat.startswith("error:") and "connection to the catalog database was lost" in flat
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert _assert_settled(catalog_url, tmp_warehouse) == ["failed"]


def test_a_run_whose_idle_connections_are_cut_carries_on(tmp_warehouse, catalog_url,
                                                         one_day_recipe, app, observer):
    # a short lease: the heartbeat talks to the database every 0.2 s while the run works
    proc = _spawn(catalog_url, one_day_recipe, app, {"HAINA_WAREHOUSE": str(tmp_warehouse),
                                                     "HAINA_LOCK_LEASE_SECONDS": "1.2"})
    _until(lambda: _running_run(observer) is not None, "the run row", proc)
    kills = 0
    while proc.poll() is None and kills < 5:
        kills += _terminate(observer, app) > 0
        time.sleep(0.3)
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err
    assert proc.returncode in (0, 3), (out, err)  # carried on, or one clean error
    statuses = _assert_settled(catalog_url, tmp_warehouse)
    assert statuses == (["succeeded"] if proc.returncode == 0 else ["failed"])
