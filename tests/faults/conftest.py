"""Shared by the fault tests: real ``haina run`` processes, faulted, and the state they leave."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import store
from catalog.exceptions import DatasetLockedError
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
        else [sys.executable, "-m", "pipelines.cli", *haina]
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
    """The Great Expectations helper processes (expectations.ge_process) started by ``pid``."""
    helpers = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"expectations.ge_process" in cmdline:
            helpers.append(child)
    return helpers


def wait_until_dead(pids: list[int], seconds: float = 60) -> list[int]:
    """The pids still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if is_alive(p)]
