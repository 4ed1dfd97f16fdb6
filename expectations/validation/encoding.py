"""The metrics format's values: what kind a column is, and how its values travel as JSON.

Chunk metrics cross process boundaries (Beam workers, the GE helper process), so every value in
them is JSON: timestamps as int microseconds since the epoch (UTC), NaN as null (it is missing,
and not valid JSON), anything unusual as its string. :func:`decode` turns them back into what
GE's pandas engine would hand to an expectation, so GE judges the same values it would have seen.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

#: GE's default ``partial_unexpected_count`` in the SUMMARY result format
PARTIAL_UNEXPECTED_COUNT = 20
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def column_kind(type_: pa.DataType) -> str:
    """The kind of a column in the metrics: number, floatNN, timestamp, string, bool or other."""
    if pa.types.is_timestamp(type_):
        return "timestamp"
    if pa.types.is_floating(type_) and type_.bit_width < 64:
        # kept apart so results compare in the column's precision, as pandas does (float32 min)
        return f"float{type_.bit_width}"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_boolean(type_):
        return "bool"
    return "other"


def encode(value: Any, kind: str) -> Any:
    """A Python value as its JSON-able metric form (timestamps: int microseconds since epoch)."""
    if value is None:
        return None
    if kind == "timestamp":
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value - _EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, float) and value != value:  # NaN is missing, and not valid JSON
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def encode_array(values: pa.ChunkedArray | pa.Array, kind: str) -> list:
    """:func:`encode` over an Arrow array; timestamps are cast in one vectorised step."""
    if kind == "timestamp":
        micros = values.cast(pa.timestamp("us", tz=values.type.tz), safe=False)
        return micros.cast(pa.int64()).to_pylist()
    return [encode(v, kind) for v in values.to_pylist()]


def decode(value: Any, kind: str) -> Any:
    """The inverse of :func:`encode`: what GE's pandas engine would hand to ``_validate``.

    Narrow floats come back as NumPy scalars of their width, so GE compares them with bounds in
    that precision, as it does with pandas' ``Series.min()``.
    """
    if value is None:
        return None
    if kind == "timestamp":
        return _EPOCH + dt.timedelta(microseconds=value)
    if kind.startswith("float"):
        return np.dtype(kind).type(value)
    return value


def python_value(value: Any) -> Any:
    """numpy / pandas scalars as plain Python (pd.Timestamp is a datetime subclass already)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value
