"""``haina`` with a fault at a named point of a run, for the tests in this folder.

    python -m tests.faults.driver POINT ACTION ARG -- HAINA_ARGUMENTS...

The run does what it always does until POINT; there it performs ACTION, then carries on:

- ``pause MARKER``: create the file MARKER and wait until the test removes it (a minute at
  most), so that a test can signal the process at that very point;
- ``fill DIR``: fill the volume holding DIR with a file until the disk is full.

POINT is where in the run:

- ``plan``: fingerprinting the sources (no run recorded yet);
- ``read``: a worker thread reading a chunk (the pipeline is running);
- ``ingested``: the pipeline has finished, before the run's counts are recorded in the catalog;
- ``validate``: the driver about to validate the merged metrics;
- ``publish``: the version folder moved into place, not yet committed;
- ``committed``: the version just committed in the catalog;
- ``succeeded``: the run just marked succeeded (before its COMPLETE lineage event).

A real ``haina run`` in its own process, faulted from the inside: nothing in Haina knows of it.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

from catalog.sql import backend as sql
from catalog.storage import warehouse
from pipelines import driver as run
from pipelines import plan
from pipelines.beam import steps
from pipelines.cli import app as cli

PAUSE_SECONDS = 60


def pause(marker: str) -> None:
    """Wait at the point until the test removes ``marker``. A signal ends the wait too where it
    raises; where the run defers it (the commit), the test's removal of the marker does."""
    path = Path(marker)
    path.touch()
    deadline = time.monotonic() + PAUSE_SECONDS
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def fill(folder: str) -> None:
    """Write zeros into ``folder`` until the volume is full (the file stays: the disk is full)."""
    block = b"\0" * 4096
    with open(Path(folder) / "filler.bin", "ab", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError:
            pass


#: point -> (owner, attribute, act before (True) or after (False) the original)
POINTS = {
    "plan": (plan, "fingerprint_sources", True),
    "read": (steps, "read_chunk", True),
    "ingested": (run.Runner, "_execute", False),
    "validate": (run.Runner, "_validate", True),
    "publish": (warehouse.Warehouse, "publish", False),
    "committed": (sql.SqlCatalog, "commit_version", False),
    "succeeded": (sql.SqlCatalog, "finish_run", False),
}
ACTIONS = {"pause": pause, "fill": fill}


def install(point: str, action: str, argument: str) -> None:
    owner, name, before = POINTS[point]
    original = getattr(owner, name)
    act = functools.partial(ACTIONS[action], argument)

    @functools.wraps(original)
    def faulted(*args, **kwargs):
        if before:
            act()
            return original(*args, **kwargs)
        result = original(*args, **kwargs)
        if point != "succeeded" or kwargs.get("status") == "succeeded":
            act()
        return result

    setattr(owner, name, faulted)


def main(argv: list[str]) -> int:
    point, action, argument, separator, *haina = argv
    if separator != "--":
        raise SystemExit(__doc__)
    install(point, action, argument)
    return cli.main(haina)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
