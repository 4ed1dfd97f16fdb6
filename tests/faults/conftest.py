"""Fixtures of the fault tests: a one-day demo recipe, and catalog rows a dead process left."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import sql
from catalog.store import DatasetRecord, RunRecord, open_catalog
from examples.qingdao_demo import generate
from tests.catalog.test_release_support import day_table, make_version
from tests.pipelines.conftest import demo_recipe

NAME = "demo-test"
#: the CLI as a child process; PYTHONPATH (the worktree) passes through in the environment
HAINA = [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture
def one_day_recipe(tmp_path) -> Path:
    """The demo grid, one daily file, without validation: a run of it takes a few seconds."""
    generate(tmp_path / "sources", days=1)
    return demo_recipe(tmp_path, quality="{enabled: false}")


def cli(*argv: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``haina ARGV`` in a child process; stdout and stderr as text."""
    return subprocess.run([*HAINA, *argv], env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, timeout=timeout)


def dead_holder(url: str, *, dataset: str = NAME, run_id: str = "r-dead",
                host: str = "far-away-host", pid: int = 4242,
                lease: dt.timedelta = dt.timedelta(seconds=-30)) -> RunRecord:
    """What a run on another host leaves when it dies: its run ``running`` and the dataset's
    lock in its name, whose lease ends ``lease`` from now (negative: already expired)."""
    catalog = open_catalog(url)
    try:
        catalog.ensure_dataset(DatasetRecord(name=dataset, title="Qingdao demo grid (test)",
                                             created_at=None))
        now = dt.datetime.now(dt.timezone.utc)
        run = RunRecord(run_id=run_id, dataset=dataset, host=host, pid=pid,
                        started_at=now - dt.timedelta(minutes=5))
        catalog.begin_run(run, [])
        with catalog._engine.begin() as conn:  # a lock row as another host writes it
            conn.execute(sql.locks_t.insert().values(
                dataset=dataset, run_id=run_id, host=host, pid=pid, acquired_at=run.started_at,
                lease_expires_at=now + lease))
    finally:
        catalog.close()
    return run


@pytest.fixture
def two_drafts(tmp_path, catalog_url):
    """Drafts v1 (day 1) and v2 (days 1 and 2) with real files, in ``tmp_path/warehouse``."""
    root = tmp_path / "warehouse"
    root.mkdir(exist_ok=True)
    catalog = open_catalog(catalog_url)
    try:
        make_version(catalog, root, "v1", {"date=2025-07-01": day_table(1)})
        make_version(catalog, root, "v2", {"date=2025-07-01": day_table(1),
                                           "date=2025-07-02": day_table(2)})
    finally:
        catalog.close()
    return root
