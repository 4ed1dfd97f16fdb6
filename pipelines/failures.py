"""What a failed run reports: an interruption or a full disk said plainly, in one line.

The run's own error is reported as it is, except that a Ctrl-C or SIGTERM becomes
:class:`~pipelines.interrupts.Interrupted` (saying whether the version was committed) and an
error that a full disk caused (however deep in a driver or a library) becomes a
:class:`~pipelines.exceptions.DiskFullError` naming the volume and the fix.
"""
from __future__ import annotations

import os

from sqlalchemy.engine import make_url

from catalog.storage import uri as uri_mod
from pipelines import diskfull, interrupts
from pipelines.exceptions import DiskFullError


def first_line(err: BaseException) -> str:
    """An error's first line, or its type's name when it has no message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def volume(path: str) -> str | None:
    """The mount point holding a local path (which may be gone: a removed staging file)."""
    if uri_mod.scheme(path) is not None:  # an object store (or a URI): no mount point
        return None
    current = os.path.abspath(path)
    while not os.path.exists(current) or not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return current


def catalog_location(url: str) -> str:
    """Where a catalog lives, for messages: a SQLite file's path, else the URL sans password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def run_failure(err: BaseException, *, run_id: str, committed: str | None,
                warehouse_root: str, catalog_url: str) -> BaseException:
    """The error to report for ``err``: an interruption or a full disk said plainly."""
    if isinstance(err, KeyboardInterrupt):
        return interrupts.as_interrupted(err, run_id=run_id, committed=committed)
    if isinstance(err, DiskFullError):
        return err
    database = catalog_location(catalog_url)
    where = diskfull.full_location(err, database=database)
    if where is None:
        return err
    where = where or warehouse_root
    mount = volume(where)
    catalog = where == database
    return DiskFullError(
        f"disk full at {where}: run {run_id} failed and nothing was committed"
        + ("; a full catalog cannot record that, so the next run marks the run abandoned "
           "and takes over its lock" if catalog else "")
        + f". Fix: free space on {f'the volume mounted at {mount}' if mount else 'it'}"
        f"{f' (df -h {mount})' if mount else ''}, or point --warehouse or --catalog at a "
        f"larger one, then re-run")
