"""Numpy views of a chunk table's columns, converted once per chunk and shared by the QC tests
and the QC statistics (pure; no Beam, no I/O).

:func:`scope` opens a per-thread memo for one chunk: a column converted by a test is reused by
the statistics of the table with flag columns added (which shares the input's buffers).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MEMO = threading.local()


@contextlib.contextmanager
def scope():
    """Keep conversions for the duration of one chunk's QC (a worker thread's own memo)."""
    _MEMO.values = {}
    try:
        yield
    finally:
        _MEMO.values = None



def memo(kind: str, table: pa.Table, name: str, convert) -> np.ndarray:
    """Convert a column to numpy once per chunk: tests and statistics read the same columns.

    Keyed by the column's data buffer, so the table with flag columns added (which shares the
    input's columns) hits the same entry; :func:`scope` opens and clears the memo around each
    chunk (outside a scope nothing is kept).
    """
    memo = getattr(_MEMO, "values", None)
    column = table.column(name)
    if memo is None or column.num_chunks == 0:
        return convert(column)
    buffers = column.chunk(0).buffers()
    key = (kind, name, len(column), buffers[-1].address if buffers[-1] is not None else 0)
    if key not in memo:
        memo[key] = convert(column)
    return memo[key]


def floats(table: pa.Table, name: str) -> np.ndarray:
    return memo("f", table, name, float64_of)


def _array_of(column: pa.ChunkedArray) -> pa.Array:
    """One contiguous array (a chunk's table columns are usually one chunk already: no copy)."""
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def float64_of(column: pa.ChunkedArray) -> np.ndarray:
    """float64 values with NaN for nulls (tests compare in float64, as ioos_qc does)."""
    array = _array_of(column)
    if pa.types.is_floating(array.type):
        # Arrow hands floats to NumPy with nulls as NaN; widening there is one pass
        return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return pc.fill_null(array.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def times(table: pa.Table) -> np.ndarray:
    return memo("t", table, "time", micros_of)


def micros_of(column) -> np.ndarray:
    array = _array_of(column)
    if (array.null_count == 0 and pa.types.is_timestamp(array.type)
            and array.type.unit == "us"):  # the canonical time column: a view, no copy
        return array.view(pa.int64()).to_numpy().view("datetime64[us]")
    column = array.cast(pa.int64())
    micros = pc.fill_null(column, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
    return micros.astype(np.int64).view("datetime64[us]")


def codes(table: pa.Table, name: str | None) -> np.ndarray | None:
    """Dense int codes of an id column (nulls share one code), for grouping."""
    if name is None or name not in table.column_names:
        return None
    encoded = table.column(name).combine_chunks().dictionary_encode()
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def native_floats(table: pa.Table, name: str) -> np.ndarray:
    """A float column in its own width (NaN for nulls); other types as float64."""
    def convert(column):
        array = _array_of(column)
        if pa.types.is_floating(array.type):
            return array.to_numpy(zero_copy_only=False)
        return float64_of(column)
    return memo("n", table, name, convert)


def depth(table: pa.Table) -> np.ndarray | None:
    return floats(table, "depth") if "depth" in table.column_names else None


def flag_values(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).combine_chunks().to_numpy(zero_copy_only=False)
