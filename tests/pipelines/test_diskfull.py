"""Recognising a full disk behind the wrappers it arrives in (pipelines.diskfull)."""
from __future__ import annotations

import errno
import sqlite3

import pytest
import sqlalchemy as sa

from catalog.exceptions import WriterError
from catalog.lineage.events import LineageError
from pipelines.diskfull import full_location, is_disk_full

PARQUET = "/wh/_staging/r1/data/date=2025-07-01/part-0123456789ab-000000-000.parquet"
DB = "/catalog/catalog.db"


def _raised(make):
    """The exception ``make()`` raises, with the chaining Python gives it."""
    try:
        make()
    except Exception as err:  # noqa: BLE001 - whatever it is, it is the subject
        return err
    raise AssertionError("nothing raised")


def _dev_full():
    with open("/dev/full", "wb", buffering=0) as out:  # Linux's always-full device
        out.write(b"x")


def _writer_error():
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as err:
        raise WriterError(f"could not write Parquet file ({err})", where=PARQUET,
                          fix="check the table's schema ...") from err


def _beam_augmented():
    """What Beam re-raises from a DoFn in the driver's thread: the same type, a new message."""
    try:
        _writer_error()
    except WriterError as exn:
        raise type(exn)(exn.args[0] + " [while running 'Ingest/Write']") from exn


def _beam_worker_thread():
    """What Beam raises from a worker thread: a RuntimeError holding the traceback as text."""
    import traceback
    text = "".join(traceback.format_exception(_raised(_writer_error)))
    raise RuntimeError(text)


def _sqlite_full():
    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.OperationalError as err:
        raise sa.exc.OperationalError("UPDATE runs SET status=?", {}, err) from err


def _lineage_file():
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as err:
        raise LineageError(f"could not write lineage events ({err})",
                           where="/wh/datasets/d/versions/v1/lineage.jsonl") from err


@pytest.mark.parametrize("make, where", [
    pytest.param(_dev_full, "", id="oserror-without-a-name"),
    pytest.param(_writer_error, PARQUET, id="writer-error"),
    pytest.param(_beam_augmented, PARQUET, id="beam-augmented"),
    pytest.param(_beam_worker_thread, PARQUET, id="beam-worker-text"),
    pytest.param(_sqlite_full, DB, id="sqlite-via-sqlalchemy"),
    pytest.param(_lineage_file, "/wh/datasets/d/versions/v1/lineage.jsonl", id="lineage-file"),
])
def test_full_disk_is_found_and_placed(make, where):
    err = _raised(make)
    assert is_disk_full(err)
    assert full_location(err, database=DB) == where


def test_named_file_of_the_oserror_wins():
    err = OSError(errno.ENOSPC, "No space left on device", "/data/x.parquet")
    assert full_location(err, database=DB) == "/data/x.parquet"


@pytest.mark.parametrize("err", [
    OSError(errno.EACCES, "Permission denied", "/wh/x"),
    WriterError("tables do not share one schema", where="sort_by_time"),
    RuntimeError("KeyboardInterrupt [while running 'Ingest/Read']"),
    sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
])
def test_other_failures_are_not_a_full_disk(err):
    assert not is_disk_full(err)
    assert full_location(err, database=DB) is None
