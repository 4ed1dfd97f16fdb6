"""Shared by the fault tests: real ``haina`` processes, faulted, the state they leave, and
catalog rows a dead process left."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from examples.qingdao_demo import generate

from catalog import store
from catalog.exceptions import DatasetLockedError
from catalog.sql import backend as sql
from catalog.store import DatasetRecord, RunRecord, open_catalog
from tests.catalog.releases.release_support import day_table, make_version
from tests.conftest import REPO
from tests.pipelines.conftest import demo_recipe

DATASET = "demo-test"
#: a run that does not end within this is stuck (generous: 2 shared cores, Beam's import)
RUN_TIMEOUT = 600


@pytest.fixture
def one_day(tmp_path) -> Path:
    """A recipe over one day of the demo grid (4 chunks), in ``tmp_path``."""
    from examples.qingdao_demo import generate

    generate(tmp_path / "sources", days=1)
    return demo_recipe(tmp_path)


def env() -> dict[str, str]:
    """This checkout first on the path, so the child runs the code under test."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def haina_args(warehouse: Path, catalog: str | None, *args: str) -> list[str]:
    found = ["--warehouse", str(warehouse)] + (["--catalog", catalog] if catalog else [])
    return [*found, *args]


def spawn(haina: list[str], fault: tuple[str, str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """``haina HAINA`` in a process of its own, with a fault (tests.faults.driver) if given."""
    command = [sys.executable, "-m", "tests.faults.driver", *fault, "--", *haina] if fault \
        else [sys.executable, "-m", "pipelines.cli.app", *haina]
    return subprocess.Popen(command, env=env(), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    return proc.returncode, out, err


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Wait until the faulted run reaches its pause (it creates ``path`` there)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its pause: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run never reached its pause")
        time.sleep(0.05)


def error_lines(stderr: str) -> list[str]:
    """What the run printed on stderr, less the libraries' start-up notices."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith("WARNING:root:")]


def catalog_of(warehouse: Path, catalog: str | None = None):
    return store.open_catalog(catalog or f"sqlite:///{warehouse}/catalog.db")


def assert_nothing_left(warehouse: Path, catalog: str | None = None) -> None:
    """No run left running, no lock held, no staging folder, no version folder without a row."""
    cat = catalog_of(warehouse, catalog)
    runs = cat.runs(DATASET)
    assert runs and all(r.status != "running" for r in runs), [(r.run_id, r.status) for r in runs]
    try:  # every holder counts as alive: a lock row left behind, dead or not, refuses us
        cat.acquire_lock(DATASET, "r-probe", is_alive=lambda _run: True)
    except DatasetLockedError as err:
        pytest.fail(f"the lock is still held: {err}")
    cat.release_lock(DATASET, "r-probe")
    staging = warehouse / "_staging"
    assert not staging.exists() or not any(staging.iterdir()), list(staging.rglob("*"))
    versions = warehouse / "datasets" / DATASET / "versions"
    committed = {v.version_id for v in cat.versions(DATASET)}
    on_disk = {p.name for p in versions.iterdir()} if versions.exists() else set()
    assert on_disk == committed, f"version folders without a catalog row: {on_disk - committed}"


def children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid`` (from /proc; zombies are dead)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ge_helpers(pid: int) -> list[int]:
    """The Great Expectations helper processes (expectations.validation.ge.process) started by ``pid``."""
    helpers = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"expectations.validation.ge.process" in cmdline:
            helpers.append(child)
    return helpers


def wait_until_dead(pids: list[int], seconds: float = 60) -> list[int]:
    """The pids still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if is_alive(p)]

NAME = "demo-test"
#: the CLI as a child process; PYTHONPATH (the worktree) passes through in the environment
HAINA = [sys.executable, "-m", "pipelines.cli.app"]


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
        now = dt.datetime.now(dt.UTC)
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
