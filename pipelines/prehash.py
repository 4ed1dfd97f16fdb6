"""Hash a run's local source files while the CLI is still importing Beam.

``haina run`` fingerprints every source file (sha256) before it plans, and importing Beam takes
over a second of one core. hashlib releases the GIL, so the CLI starts hashing local files in
background threads as soon as the recipe parses (:func:`start`), and
:func:`pipelines.plan.fingerprint` takes the digest (:func:`take`) instead of reading the file a
second time, provided the file's size, mtime and inode are still those it had when it was hashed.

Only local files are hashed ahead (remote URIs go through Beam's filesystems, which are not
imported yet); anything that does not parse or match is left to the normal path, which reports
it. The threads are daemons: a run that fails early does not wait for them.
"""
from __future__ import annotations

import concurrent.futures
import glob
import os
import queue
import threading
from pathlib import Path

from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod

_PENDING: dict[str, concurrent.futures.Future] = {}
_LOCK = threading.Lock()


def _stat_key(path: str) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _digest(path: str) -> tuple[str, int, tuple[int, int, int]]:
    """(sha256, size, stat key before hashing): the stat key tells :func:`take` whether the
    file changed since. ``catalog.storage.files`` hashes a local file without Beam."""
    before = _stat_key(path)
    found = files_mod.digest(path)
    return found.sha256, found.size, before


def local_sources(recipe_path: str | os.PathLike) -> list[str]:
    """The local files the recipe's source globs match ([] if the recipe does not parse)."""
    # imported here, not at the top: the CLI imports this module before Beam to start hashing
    # early, and the recipe module imports the connectors (and through them Beam)
    from pipelines import recipe as recipe_mod
    from pipelines.exceptions import HainaError

    try:
        recipe = recipe_mod.load(recipe_path)
    except (HainaError, ValueError, OSError):
        return []  # the run loads it again and reports the problem
    found: list[str] = []
    for source in recipe.sources:
        for pattern in source.uris():
            if uri_mod.is_remote(pattern):
                continue
            absolute = pattern if os.path.isabs(pattern) else os.path.normpath(
                Path(recipe.base_dir).resolve() / pattern)
            found.extend(p for p in sorted(glob.glob(absolute)) if os.path.isfile(p))
    return list(dict.fromkeys(found))


def start(paths: list[str], threads: int | None = None) -> int:
    """Hash ``paths`` in daemon threads, several files at a time; returns how many."""
    if not paths:
        return 0
    work: queue.SimpleQueue = queue.SimpleQueue()
    with _LOCK:
        for path in map(os.path.normpath, paths):
            if path not in _PENDING:
                future: concurrent.futures.Future = concurrent.futures.Future()
                _PENDING[path] = future
                work.put((path, future))
    for _ in range(min(len(paths), threads or os.cpu_count() or 1, 8)):
        threading.Thread(target=_worker, args=(work,), name="haina-prehash", daemon=True).start()
    return len(paths)


def _worker(work: queue.SimpleQueue) -> None:
    while True:
        try:
            path, future = work.get_nowait()
        except queue.Empty:
            return
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(_digest(path))
        except BaseException as err:  # noqa: BLE001 - handed to whoever takes the digest
            future.set_exception(err)


def take(path: str) -> tuple[str, int] | None:
    """(sha256, size) of ``path`` if it was hashed ahead and has not changed since; else None."""
    with _LOCK:
        future = _PENDING.pop(os.path.normpath(path), None)
    if future is None:
        return None
    try:
        sha256, size, before = future.result()
        unchanged = _stat_key(path) == before
    except OSError:
        return None  # the normal path reads it again and reports the error
    return (sha256, size) if unchanged else None


def clear() -> None:
    with _LOCK:
        _PENDING.clear()
