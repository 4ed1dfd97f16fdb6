"""Uniqueness of compound keys across a whole run, counted exactly as GE counts it.

A key is unique only if it is unique across every chunk of the run, so no chunk can count its
duplicates alone. Each chunk contributes its rows' keys (:func:`key_parts`), cut by a stable hash
into :data:`KEY_BUCKETS` buckets (equal keys always share a bucket); one bucket's keys from all
chunks are then compared exactly (:func:`duplicate_metrics`: sorted, equal neighbours), so the
unexpected count is GE's: every row whose key occurs more than once. The chunk's own entry
(:func:`expectations.validation.arrow_metrics.compound_entry`) only counts the rows GE ignores.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

from expectations.validation.arrow_metrics import ignored_rows, missing_rows
from expectations.validation.checks import Check
from expectations.validation.encoding import PARTIAL_UNEXPECTED_COUNT, column_kind, encode_array

#: buckets the keys of a run are spread over: each is one Beam element per chunk, and grouping
#: by bucket lets a portable runner check them on several workers
KEY_BUCKETS = 16
_ROW = "__haina_row"
_MISSING_HASH = np.uint64(0x9E3779B97F4A7C15)


def key_parts(table: pa.Table, checks: Sequence[Check], order: Sequence = ()) -> list[tuple]:
    """This chunk's keys for every compound check: ``((check id, bucket), (order, keys))``.

    ``keys`` holds the key columns of the rows GE does not ignore, and their row numbers in the
    chunk (for GE's first unexpected values, in dataset order).
    """
    parts = []
    for check in checks:
        if check.family != "compound" or table.num_rows == 0 or any(
                c not in table.column_names for c in check.column_list):
            continue
        keys = table.select(list(check.column_list)).append_column(
            _ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
        ignored = ignored_rows(table, check)
        if ignored.any():
            keys = keys.filter(pa.array(~ignored))
        buckets = _key_hash(keys, check.column_list) % np.uint64(KEY_BUCKETS)
        for bucket in np.unique(buckets):
            part = keys.filter(pa.array(buckets == bucket))
            parts.append(((check.id, int(bucket)), (list(order), part)))
    return parts


def _key_hash(keys: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """A stable 64-bit hash per row (same on every worker and process: no Python ``hash``)."""
    h = np.zeros(keys.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in columns:
            h = _mix(h * np.uint64(31) + _column_hash(keys.column(name)))
    return h


def _column_hash(column: pa.ChunkedArray) -> np.ndarray:
    """Equal values give equal uint64 codes; every missing value (null or NaN) the same code."""
    type_ = column.type
    missing = missing_rows(column)
    if pa.types.is_floating(type_):
        values = column.cast(pa.float64()).fill_null(0.0).to_numpy() + 0.0  # -0.0 -> 0.0
        codes = values.view(np.uint64).copy()
    elif pa.types.is_integer(type_) or pa.types.is_temporal(type_) or pa.types.is_boolean(type_):
        as_int = column.cast(pa.int64()) if not pa.types.is_temporal(type_) else \
            pc.cast(column, pa.int64())
        codes = as_int.fill_null(0).to_numpy().view(np.uint64).copy()
    else:  # strings and anything else: hash each distinct value once (pandas' SipHash with
        # its fixed key: the same in every process), then spread by the rows' dictionary codes
        encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        hashes = hash_array(distinct, categorize=False) if len(distinct) else np.zeros(1)
        codes = hashes.astype(np.uint64)[encoded.indices.fill_null(0).to_numpy()]
    codes[missing] = _MISSING_HASH
    return codes


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads similar keys (consecutive times) over all buckets."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def duplicate_metrics(check: Check, parts: Iterable[tuple[list, pa.Table]]) -> dict:
    """Exact GE metrics of a compound check over one bucket's keys from every chunk.

    Returns partial metrics (rows 0, no columns, engine None) that :func:`~expectations.validation.merge.merge_metrics` adds
    to the chunks' own: the unexpected count and the first unexpected keys in dataset order.
    """
    parts = sorted(parts, key=lambda part: tuple(part[0]))
    tables = [keys for _, keys in parts if keys.num_rows]
    entry = {"kind": "compound", "nulls": 0, "unexpected": 0, "values": []}
    if tables:
        keys = pa.concat_tables(tables).combine_chunks()
        part_of = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
        duplicated = _duplicated(keys, check.column_list)
        entry["unexpected"] = int(duplicated.sum())
        if entry["unexpected"]:
            entry["values"] = _first_keys(keys, check, duplicated, part_of,
                                          [order for order, t in parts if t.num_rows])
    return {"engine": None, "rows": 0, "columns": None, "checks": {check.id: entry}}


def _duplicated(keys: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """pandas' ``duplicated(keep=False)``: rows whose key occurs more than once (missing values
    equal each other, as pandas compares them), without a Python loop over rows."""
    n = keys.num_rows
    if n < 2:
        return np.zeros(n, dtype=bool)
    sorted_rows = pc.sort_indices(
        keys, sort_keys=[(c, "ascending", "at_end") for c in columns]).to_numpy()
    same = np.ones(n - 1, dtype=bool)
    for name in columns:
        column = keys.column(name).take(sorted_rows)
        missing = missing_rows(column)
        equal = pc.equal(column.slice(1), column.slice(0, n - 1)).fill_null(False)
        equal = np.asarray(equal.to_numpy(zero_copy_only=False), dtype=bool)
        same &= equal | (missing[1:] & missing[:-1])
    in_group = np.zeros(n, dtype=bool)
    in_group[1:] |= same
    in_group[:-1] |= same
    duplicated = np.zeros(n, dtype=bool)
    duplicated[sorted_rows] = in_group
    return duplicated


def _first_keys(keys: pa.Table, check: Check, duplicated: np.ndarray, part_of: np.ndarray,
                orders: list) -> list:
    rows = keys.column(_ROW).to_numpy()
    candidates = np.flatnonzero(duplicated)
    first = candidates[np.lexsort((rows[candidates], part_of[candidates]))]
    first = first[:PARTIAL_UNEXPECTED_COUNT]
    picked = keys.take(pa.array(first))
    columns = {c: encode_array(picked.column(c), column_kind(picked.column(c).type))
               for c in check.column_list}
    return [[orders[part_of[i]], int(rows[i]), {c: columns[c][k] for c in check.column_list}]
            for k, i in enumerate(first)]
