"""Recognising a full disk in a failure, however deeply it was wrapped, and where it happened.

A full volume surfaces in many disguises: an ``OSError`` with ``errno`` ENOSPC (or EDQUOT, a
full quota) raised by a write; the Parquet writer's ``WriterError`` chained to it; Beam's copy
of that error with the step's name appended, or — from a worker thread — a ``RuntimeError``
whose message is the worker's whole traceback as text; SQLite's "database or disk is full"
inside SQLAlchemy's ``OperationalError``; PostgreSQL's "could not extend file". Without this
the run printed Beam's traceback, or the writer's advice to check the table's schema.

Pure functions over exception objects: no I/O.
"""
from __future__ import annotations

import errno
import re
from collections.abc import Iterator

from catalog.exceptions import CatalogUnavailableError

#: errno values that mean "no room to write": the device is full, or the user's quota is
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: how the same conditions read once an exception was flattened to text (Beam's workers,
#: SQLite, PostgreSQL's SQLSTATE 53100 "disk_full")
_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|\[Errno (?:28|122)\]|"
                        r"database or disk is full|could not extend file|DiskFull")
#: a path named in flattened text: the OSError form, then Haina's "PATH: could not write"
_PATH_TEXT = (re.compile(r"(?:No space left on device|Disk quota exceeded): '([^']+)'"),
              re.compile(r"(?:Error|Exception): ((?:/|[a-z][a-z0-9+.-]*://)[^\s:]+): "))


def chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and every exception behind it: causes, contexts, and a database driver's
    original error (SQLAlchemy's ``.orig``). Each once, in order of discovery."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [current.__cause__, current.__context__,
                 orig if isinstance(orig, BaseException) else None]


def is_disk_full(err: BaseException) -> bool:
    """Whether a full disk (or quota) is anywhere behind ``err``."""
    return any(_full(e) for e in chain(err))


def _full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in FULL_ERRNOS:
        return True
    return bool(_FULL_TEXT.search(str(err)))


def _is_database_error(err: BaseException) -> bool:
    # the catalog's own "database failed the operation" error, or SQLAlchemy's DBAPIError (and
    # the DB-API errors it wraps), which carry the failed statement
    return isinstance(err, CatalogUnavailableError) or (
        hasattr(err, "statement") and hasattr(err, "orig"))


def full_location(err: BaseException, *, database: str) -> str | None:
    """Where the disk was full, if a full disk is behind ``err``; else None.

    The path comes from the failing write where one is known (the ``OSError``'s filename, the
    file a Haina error names); a full disk met by the catalog database is ``database`` (the
    SQLite file, or the server's URL). An empty string: full, but no place was named.
    """
    errors = list(chain(err))
    if not any(_full(e) for e in errors):
        return None
    for current in errors:
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS and current.filename:
            return str(current.filename)
    if any(_is_database_error(e) for e in errors):
        return database
    for current in errors:
        where = getattr(current, "where", None)
        if isinstance(where, str) and (where.startswith("/") or _is_uri(where)):
            return where
    for current in errors:
        for pattern in _PATH_TEXT:
            found = pattern.search(str(current))
            if found:
                return found.group(1)
    return ""


def _is_uri(value) -> bool:
    return isinstance(value, str) and bool(re.match(r"^[a-z][a-z0-9+.-]*://", value))
