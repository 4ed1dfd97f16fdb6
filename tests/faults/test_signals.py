"""A run stopped by SIGTERM, SIGINT or SIGKILL at several points of a real ``haina run``.

SIGTERM and SIGINT: one line naming the run and the signal, exit 128 + the signal number, the run
marked failed, its lock released, its staging folder removed, its GE helper gone. SIGKILL leaves
the run behind, but not its GE helper, and the next run recovers and commits.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.faults.conftest import (
    DATASET,
    assert_nothing_left,
    catalog_of,
    env,
    error_lines,
    finish,
    ge_helpers,
    haina_args,
    is_alive,
    spawn,
    wait_for,
    wait_until_dead,
)

pytestmark = pytest.mark.slow


def _signalled_run(tmp_path, recipe, point: str, signum: int):
    """Run with a pause at ``point``, signal it there; return (code, stdout, stderr, helpers)."""
    warehouse, marker = tmp_path / "warehouse", tmp_path / "paused"
    proc = spawn(haina_args(warehouse, None, "run", "--full", str(recipe)),
                 fault=(point, "pause", str(marker)))
    wait_for(marker, proc)
    helpers = ge_helpers(proc.pid)
    proc.send_signal(signum)
    marker.unlink()  # the run goes on from its pause (where the signal did not stop it)
    return (*finish(proc), helpers)


@pytest.mark.parametrize("signum, point", [
    # the pipeline running (worker threads busy), and the driver validating; SIGINT takes the
    # same path as SIGTERM, so one point of it is enough
    pytest.param(signal.SIGTERM, "read", id="SIGTERM-read"),
    pytest.param(signal.SIGTERM, "validate", id="SIGTERM-validate"),
    pytest.param(signal.SIGINT, "read", id="SIGINT-read"),
])
def test_terminated_run_cleans_up_and_says_so(tmp_path, one_day, signum, point):
    code, _out, err, helpers = _signalled_run(tmp_path, one_day, point, signum)

    assert code == 128 + signum, err
    lines = error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    name = signal.Signals(signum).name
    assert f"interrupted by {name}; nothing was committed" in lines[0]
    warehouse = tmp_path / "warehouse"
    (run,) = catalog_of(warehouse).runs(DATASET)
    assert run.run_id in lines[0]
    assert run.status == "failed" and name in (run.error or "")
    assert catalog_of(warehouse).versions(DATASET) == []
    assert_nothing_left(warehouse)
    assert helpers, "the run had started its Great Expectations helper"
    assert wait_until_dead(helpers) == []


def test_terminated_while_planning_says_so(tmp_path, one_day):
    code, _out, err, _helpers = _signalled_run(tmp_path, one_day, "plan", signal.SIGTERM)

    assert code == 143, err
    assert error_lines(err) == ["interrupted by SIGTERM; nothing was committed"]


def test_signal_during_commit_waits_for_the_commit(tmp_path, one_day):
    """Between moving the version folder and committing it, a signal waits: the version is
    committed whole, and the message says so instead of "nothing was committed"."""
    code, _out, err, _helpers = _signalled_run(tmp_path, one_day, "publish", signal.SIGTERM)

    assert code == 143, err
    warehouse = tmp_path / "warehouse"
    (version,) = catalog_of(warehouse).versions(DATASET)
    (line,) = error_lines(err)
    assert f"after it committed version {version.version_id}" in line
    (run,) = catalog_of(warehouse).runs(DATASET)
    assert run.status == "succeeded"
    assert_nothing_left(warehouse)


def test_killed_run_leaves_no_helper_and_the_next_run_recovers(tmp_path, one_day):
    code, _out, _err, helpers = _signalled_run(tmp_path, one_day, "read", signal.SIGKILL)

    assert code == -signal.SIGKILL
    assert helpers, "the run had started its Great Expectations helper"
    assert wait_until_dead(helpers) == [], "the GE helper outlived its killed run"
    warehouse = tmp_path / "warehouse"
    (killed,) = catalog_of(warehouse).runs(DATASET)
    assert killed.status == "running"  # nothing could record its end

    code, out, err = finish(spawn(haina_args(warehouse, None, "run", str(one_day))))
    assert code == 0, err
    assert f"run {killed.run_id} had died without finishing; marked abandoned" in out
    statuses = {r.run_id: r.status for r in catalog_of(warehouse).runs(DATASET)}
    assert statuses.pop(killed.run_id) == "abandoned"
    assert list(statuses.values()) == ["succeeded"]
    assert_nothing_left(warehouse)


def test_helper_dies_with_its_parent_even_when_its_stdin_stays_open(tmp_path):
    """The helper must not depend on seeing EOF: here a third process (this test) holds its
    stdin open, as an inherited descriptor would, and the parent is killed with SIGKILL."""
    read_end, write_end = os.pipe()
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys, time
        helper = subprocess.Popen([sys.executable, "-m", "expectations.validation.ge.process",
                                   str(os.getpid())], stdin={read_end},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(helper.pid, flush=True)
        time.sleep(600)
        """)], pass_fds=(read_end,), stdout=subprocess.PIPE, text=True, env=env())
    os.close(read_end)
    helper = int(parent.stdout.readline())
    try:
        assert is_alive(helper)
        parent.kill()
        parent.wait()
        assert wait_until_dead([helper]) == [], "the helper outlived its parent"
    finally:
        os.close(write_end)
        parent.kill()
        if is_alive(helper):
            os.kill(helper, signal.SIGKILL)
