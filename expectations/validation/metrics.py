"""Exact expectation metrics per chunk with ``pyarrow.compute``: the role of a GE execution engine.

Great Expectations separates metric computation (execution engines) from expectation evaluation
(``Expectation._validate(metrics, ...)``). Workers compute, per chunk, exactly the metrics GE's
expectation classes read (row count, null count, unexpected count, first unexpected values, column
min/max); :func:`merge_metrics` combines them exactly across chunks; and
:func:`expectations.validation.results.suite_results` lets GE's own classes judge the merged metrics.

This module does not import Great Expectations at module level (``import great_expectations``
takes seconds); only :func:`ge_chunk_metrics`, the slow reference engine, imports it lazily.

Cost per chunk: one ``pc.min_max`` per range-checked column; the per-row comparison runs only when
the chunk's min or max lies outside a bound. Null counts are ``array.null_count`` (free) plus, for
float columns, one ``is_nan`` pass: NaN counts as missing, like GE's pandas engine (where Arrow
nulls become NaN and ``isnull`` is true for both).

Metrics format (JSON-able, picklable)::

    {"engine": "arrow", "rows": int, "columns": [name, ...],
     "checks": {check_id: entry}}

    map entry:       {"kind", "nulls", "unexpected", "values": [[order, row, value], ...]}
    aggregate entry: {"kind", "min", "max"}
    table entry:     {}
    absent column:   {"missing": true}

``kind`` is "number", "timestamp" (values as int microseconds since the epoch, UTC), "string",
"bool" or "other". ``values`` holds at most :data:`PARTIAL_UNEXPECTED_COUNT` unexpected values,
ordered by ``(order, row)`` where ``order`` is the chunk's position in the dataset; that makes
:func:`merge_metrics` commutative and keeps GE's "first N unexpected values in row order".
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import heapq
import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from expectations.exceptions import MetricTypeError, ReferenceEngineError
from expectations.qc import flags
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc
from expectations.validation.checks import Check, compile_checks

#: GE's default ``partial_unexpected_count`` in the SUMMARY result format
PARTIAL_UNEXPECTED_COUNT = 20
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass
class _ColumnStats:
    """Per-chunk statistics of one column, computed at most once and shared by its checks.

    Numeric columns go through NumPy: Arrow's ``min_max`` on floats tests every value for NaN
    and ran ~25x slower than NumPy's vectorised ``min``/``max`` (2.2 ms against 0.08 ms on 280 k
    float32 values). Floats come out of Arrow with nulls as NaN, so one ``min`` also answers
    "is anything missing?": a non-NaN minimum means no null and no NaN in the chunk.
    """

    array: pa.ChunkedArray
    kind: str
    _nulls: int | None = None
    _min_max: tuple | None = None
    _values: np.ndarray | None = None
    _raw: tuple | None = None

    @property
    def numeric(self) -> np.ndarray | None:
        """The column as NumPy (floats with NaN for nulls; integers only without nulls)."""
        type_ = self.array.type
        if self._values is None and (
                pa.types.is_floating(type_)
                or (pa.types.is_integer(type_) and self.array.null_count == 0)):
            combined = self.array.combine_chunks() if self.array.num_chunks != 1 \
                else self.array.chunk(0)
            self._values = combined.to_numpy(zero_copy_only=False)
        return self._values

    @property
    def nulls(self) -> int:
        if self._nulls is None:
            values = self.numeric
            if values is None or values.size == 0 or values.dtype.kind != "f":
                self._nulls = self.array.null_count
            elif not np.isnan(self._raw_extremes()[0]):
                self._nulls = 0
            else:  # nulls are NaN here, so one count covers both, as GE's pandas engine does
                self._nulls = int(np.count_nonzero(np.isnan(values)))
        return self._nulls

    @property
    def min_max(self) -> tuple:
        """(min, max) as Python values of the column's type; None when every value is missing."""
        if self._min_max is None:
            values = self.numeric
            if values is None:
                found = pc.min_max(self.array)
                self._min_max = (found["min"].as_py(), found["max"].as_py())
            elif values.size == 0:
                self._min_max = (None, None)
            else:
                low, high = self._raw_extremes()
                if values.dtype.kind == "f" and (np.isnan(low) or np.isnan(high)):
                    missing = np.isnan(values).all()
                    low, high = (None, None) if missing else (np.nanmin(values),
                                                              np.nanmax(values))
                self._min_max = (None, None) if low is None else (low.item(), high.item())
        return self._min_max

    def _raw_extremes(self) -> tuple:
        """NumPy's min and max of the numeric values (NaN when any value is NaN), computed once."""
        if self._raw is None:
            values = self.numeric
            self._raw = (values.min(), values.max())
        return self._raw

    def count_in(self, value_set: Sequence) -> int | None:
        """How many present values are in ``value_set``: exact for integer columns, else None.

        Flag columns (``uint8``) are checked against their five codes on every chunk: a few
        vectorised equality counts, or none when the chunk holds a single value.
        """
        values = self.numeric
        if values is None or values.dtype.kind not in "iu":
            return None
        wanted = [v for v in value_set if isinstance(v, int) and not isinstance(v, bool)]
        if len(wanted) != len([v for v in value_set if v is not None]):
            return None
        low, high = self.min_max
        if low is None:
            return 0
        if low == high:
            return values.size if low in wanted else 0
        return sum(int(np.count_nonzero(values == v)) for v in set(wanted) if low <= v <= high)


def column_kind(type_: pa.DataType) -> str:
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


def chunk_metrics(table: pa.Table, checks: Sequence[Check], order: Sequence = ()) -> dict:
    """Exact partial metrics of ``checks`` on one chunk; ``order`` is the chunk's position."""
    cache: dict[str, _ColumnStats] = {}
    entries = {}
    for check in checks:
        entries[check.id] = _check_entry(table, check, cache, list(order))
    return {"engine": "arrow", "rows": table.num_rows, "columns": list(table.column_names),
            "checks": entries}


def _check_entry(table: pa.Table, check: Check, cache: dict, order: list) -> dict:
    if check.family == "table":
        return {}
    if check.family == "compound":
        return _compound_entry(table, check)
    if check.family == "pair":
        return _pair_entry(table, check, order)
    if check.column not in table.column_names:
        return {"missing": True}
    if check.condition is not None:
        return _conditional_entry(table, check, order)
    stats = cache.get(check.column)
    if stats is None:
        array = table.column(check.column)
        stats = cache[check.column] = _ColumnStats(array, column_kind(array.type))
    if check.family == "schema":
        low, high = _pandas_dtypes(stats.array.type)
        return {"kind": "schema", "dtypes": {str(stats.array.type): [low, high]},
                "nulls": stats.array.null_count}
    if check.family == "aggregate":
        low, high = stats.min_max
        return {"kind": stats.kind, "min": encode(low, stats.kind), "max": encode(high, stats.kind)}
    unexpected = _MAP_MASKS[check.type](stats, check)
    return _map_entry(stats, unexpected, order)


def _conditional_entry(table: pa.Table, check: Check, order: list) -> dict:
    """A map check on the rows its ``row_condition`` selects, as GE's pandas engine filters them
    before counting: ``rows`` is how many there are (GE's ``table.row_count`` of that domain).
    Sampled rows keep their position in the chunk, as pandas' filtered index does."""
    condition = check.condition
    if condition.column not in table.column_names:
        return {"missing": True}
    selected = pc.fill_null(pc.is_in(table.column(condition.column),
                                     value_set=pa.array(condition.values, pa.int64())), False)
    rows = pc.indices_nonzero(selected)
    array = table.column(check.column).filter(selected)
    stats = _ColumnStats(array, column_kind(array.type))
    entry = _map_entry(stats, _MAP_MASKS[check.type](stats, check), order)
    entry["values"] = [[o, rows[r].as_py(), v] for o, r, v in entry["values"]]
    entry["rows"] = len(rows)
    return entry


@functools.lru_cache(maxsize=256)
def _pandas_dtypes(type_: pa.DataType) -> tuple[str, str]:
    """The dtype GE's pandas engine sees for an Arrow column: without nulls, and with some.

    ``to_pandas`` turns an integer column with nulls into float64 and a boolean one into object;
    a run-level type therefore depends on whether any chunk had a null, as it would if GE
    validated the whole table in one pandas frame.
    """
    without = pa.table({"c": pa.array([], type_)}).to_pandas().dtypes["c"]
    with_nulls = pa.table({"c": pa.array([None], type_)}).to_pandas().dtypes["c"]
    return str(without), str(with_nulls)


def _map_entry(stats: _ColumnStats, mask: pa.ChunkedArray | None, order: list) -> dict:
    """Count and sample the rows where ``mask`` is true (None: no row is unexpected)."""
    entry = {"kind": stats.kind, "nulls": stats.nulls, "unexpected": 0, "values": []}
    if mask is None:
        return entry
    count = pc.sum(mask).as_py() or 0
    if count:
        rows = pc.indices_nonzero(mask.fill_null(False))[:PARTIAL_UNEXPECTED_COUNT]
        values = stats.array.take(rows)
        entry["values"] = [[order, r, v] for r, v in
                           zip(rows.to_pylist(), encode_array(values, stats.kind))]
    entry["unexpected"] = count
    return entry


def _not_null_mask(stats: _ColumnStats, check: Check):
    if stats.nulls == 0:
        return None
    return pc.is_null(stats.array, nan_is_null=True)


def _between_mask(stats: _ColumnStats, check: Check):
    low, high = (_typed_bound(b, stats, check) for b in (check.min_value, check.max_value))
    if not _may_be_outside(stats, check, low, high):
        return None
    outside = []
    if low is not None:
        outside.append((pc.less_equal if check.strict_min else pc.less)(stats.array, low))
    if high is not None:
        outside.append((pc.greater_equal if check.strict_max else pc.greater)(stats.array, high))
    # nulls stay null and NaN compares false, so missing values are never "unexpected"
    return outside[0] if len(outside) == 1 else pc.or_(outside[0], outside[1])


def _may_be_outside(stats: _ColumnStats, check: Check, low, high) -> bool:
    """Decide from the chunk's min/max alone whether any row can fail (the cheap common case)."""
    smallest, largest = stats.min_max
    if smallest is None:
        return False
    below = low is not None and (smallest < low.as_py() or
                                 (check.strict_min and smallest == low.as_py()))
    above = high is not None and (largest > high.as_py() or
                                  (check.strict_max and largest == high.as_py()))
    return below or above


def _typed_bound(bound, stats: _ColumnStats, check: Check) -> pa.Scalar | None:
    """The bound as an Arrow scalar: timestamps in the column's type, numbers as float64.

    Numbers compare in float64, as GE's pandas engine does: for a float32 column it takes its
    per-value path, where each value is a Python float (so float32(0.1) > 0.1 there, and here).
    """
    if bound is None:
        return None
    is_time = isinstance(bound, dt.datetime)
    if is_time != (stats.kind == "timestamp") or not _orderable(stats.kind):
        raise MetricTypeError(
            f"column of Arrow type {stats.array.type} cannot be compared with bound {bound!r}",
            where=check.where,
            fix="use ISO-8601 time bounds for timestamp columns and numbers for numeric columns")
    return pa.scalar(bound, type=stats.array.type if is_time else pa.float64())


def _orderable(kind: str) -> bool:
    return kind in ("number", "timestamp") or kind.startswith("float")


def _in_set_mask(stats: _ColumnStats, check: Check):
    inside = stats.count_in(check.value_set)
    if inside is not None and inside == len(stats.array) - stats.nulls:
        return None  # every present value is in the set: no per-row mask needed
    try:
        value_set = pa.array([v for v in check.value_set if v is not None]).cast(stats.array.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise MetricTypeError(f"value_set {list(check.value_set)!r} cannot be compared with a "
                              f"column of Arrow type {stats.array.type}", where=check.where,
                              fix="write the value_set in the column's type") from err
    outside = pc.invert(pc.is_in(stats.array, value_set=value_set))
    present = pc.invert(pc.is_null(stats.array, nan_is_null=True))
    return pc.and_(outside, present)


def _qartod_gross_range_mask(stats: _ColumnStats, check: Check):
    """Rows :func:`expectations.qc.qartod.gross_range` flags FAIL (the GE adapter's metric)."""
    low, high = stats.min_max
    fail_low, fail_high = check.fail_span
    if low is None or (fail_low <= low and high <= fail_high):
        return None  # the chunk lies inside the fail span: no row can fail
    if not _orderable(stats.kind) or stats.kind == "timestamp":
        raise MetricTypeError(f"column of Arrow type {stats.array.type} is not numeric",
                              where=check.where, fix="apply the gross range test to numbers")
    values = stats.numeric
    if values is None:  # integers with nulls: as float64, nulls as NaN (MISSING, not FAIL)
        values = stats.array.cast(pa.float64()).to_numpy()
    verdict = qc.gross_range(values, check.fail_span, check.suspect_span)
    return pa.array(verdict == flags.FAIL)


_MAP_MASKS = {
    "expect_column_values_to_not_be_null": _not_null_mask,
    "expect_column_values_to_be_between": _between_mask,
    "expect_column_values_to_be_in_set": _in_set_mask,
    "expect_column_values_to_pass_qartod_gross_range": _qartod_gross_range_mask,
}


def encode(value, kind: str):
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
    if kind == "timestamp":
        micros = values.cast(pa.timestamp("us", tz=values.type.tz), safe=False)
        return micros.cast(pa.int64()).to_pylist()
    return [encode(v, kind) for v in values.to_pylist()]


def decode(value, kind: str):
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


# ---------------------------------------------------------------- column pairs (QARTOD location)


def _pair_entry(table: pa.Table, check: Check, order: list) -> dict:
    """Rows :func:`expectations.qc.position.location` flags FAIL, among the rows GE does not
    ignore."""
    a, b = check.column_list
    if a not in table.column_names or b not in table.column_names:
        return {"missing": True}
    columns = [table.column(a), table.column(b)]
    lat, lon = (c.cast(pa.float64()).to_numpy() for c in columns)  # nulls become NaN
    ignored = _ignored(table, check)
    bad = (qc_position.location(lat, lon, bbox=check.bbox) == flags.FAIL) & ~ignored
    kinds = {a: column_kind(columns[0].type), b: column_kind(columns[1].type)}
    entry = {"kind": "pair", "kinds": kinds, "nulls": int(ignored.sum()),
             "unexpected": int(bad.sum()), "values": []}
    if entry["unexpected"]:
        rows = pa.array(np.flatnonzero(bad)[:PARTIAL_UNEXPECTED_COUNT])
        picked = [encode_array(c.take(rows), kinds[n]) for c, n in zip(columns, (a, b))]
        entry["values"] = [[order, r, [x, y]] for r, x, y in zip(rows.to_pylist(), *picked)]
    return entry


# ---------------------------------------------------------------- compound keys (uniqueness)
#
# A key is unique only if it is unique across every chunk of the run, so no chunk can count its
# duplicates alone. Each chunk contributes its rows' keys, cut by a stable hash into
# KEY_BUCKETS buckets (equal keys always share a bucket); one bucket's keys from all chunks are
# then compared exactly (sorted, equal neighbours), so the unexpected count is GE's: every row
# whose key occurs more than once. The chunk's own entry only counts the rows GE ignores.

#: buckets the keys of a run are spread over: each is one Beam element per chunk, and grouping
#: by bucket lets a portable runner check them on several workers
KEY_BUCKETS = 16
_ROW = "__haina_row"
_MISSING_HASH = np.uint64(0x9E3779B97F4A7C15)


def _missing(column: pa.ChunkedArray) -> np.ndarray:
    """Null or NaN per row: what pandas calls missing."""
    return np.asarray(pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False),
                      dtype=bool)


#: GE's ``ignore_row_if`` values (multicolumn and column-pair spellings) -> how missing values
#: of the columns combine into "skip this row" (None: never skip)
_IGNORE = {"all_values_are_missing": np.logical_and, "both_values_are_missing": np.logical_and,
           "any_value_is_missing": np.logical_or, "either_value_is_missing": np.logical_or,
           "never": None, "neither": None}


def _ignored(table: pa.Table, check: Check) -> np.ndarray:
    """Rows GE's ``ignore_row_if`` skips for the check's columns."""
    combine = _IGNORE[check.ignore_row_if]
    if combine is None or table.num_rows == 0:
        return np.zeros(table.num_rows, dtype=bool)
    return functools.reduce(combine, (_missing(table.column(c)) for c in check.column_list))


def _compound_entry(table: pa.Table, check: Check) -> dict:
    if any(c not in table.column_names for c in check.column_list):
        return {"missing": True}
    kinds = {c: column_kind(table.column(c).type) for c in check.column_list}
    return {"kind": "compound", "kinds": kinds, "nulls": int(_ignored(table, check).sum()),
            "unexpected": 0, "values": []}


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
        ignored = _ignored(table, check)
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
    missing = _missing(column)
    if pa.types.is_floating(type_):
        values = column.cast(pa.float64()).fill_null(0.0).to_numpy() + 0.0  # -0.0 -> 0.0
        codes = values.view(np.uint64).copy()
    elif pa.types.is_integer(type_) or pa.types.is_temporal(type_) or pa.types.is_boolean(type_):
        as_int = column.cast(pa.int64()) if not pa.types.is_temporal(type_) else \
            pc.cast(column, pa.int64())
        codes = as_int.fill_null(0).to_numpy().view(np.uint64).copy()
    else:  # strings and anything else: hash each distinct value once (pandas' SipHash with
        # its fixed key: the same in every process), then spread by the rows' dictionary codes
        from pandas.util import hash_array

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


def duplicate_metrics(check: Check, parts) -> dict:
    """Exact GE metrics of a compound check over one bucket's keys from every chunk.

    Returns partial metrics (rows 0, no columns, engine None) that :func:`merge_metrics` adds
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
        missing = _missing(column)
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


# ---------------------------------------------------------------- merging


def merge_metrics(a: dict, b: dict) -> dict:
    """Exact combination of two partial metrics; associative and commutative, ``{}`` is neutral."""
    if not a:
        return b
    if not b:
        return a
    checks = dict(a["checks"])
    for key, entry in b["checks"].items():
        checks[key] = _merge_entry(checks[key], entry) if key in checks else entry
    return {"engine": _merge_engine(a["engine"], b["engine"]), "rows": a["rows"] + b["rows"],
            "columns": _merge_columns(a["columns"], b["columns"]), "checks": checks}


def _merge_engine(a: str | None, b: str | None) -> str | None:
    """None marks key metrics (:func:`duplicate_metrics`): computed by Haina whatever the engine."""
    if a is None or b is None:
        return a or b
    return a if a == b else "mixed"


def _merge_columns(a: list | None, b: list | None) -> list | None:
    """Keep the column order when all chunks share it; otherwise the sorted union.

    None (key metrics, which see no table) is neutral."""
    if a is None or b is None:
        return b if a is None else a
    return list(a) if a == b else sorted(set(a) | set(b))


def _merge_entry(a: dict, b: dict) -> dict:
    if not a or not b:
        return a or b
    if a.get("missing") or b.get("missing"):
        # a column absent from any chunk is reported as absent: its rows there were never checked
        return {"missing": True}
    if "dtypes" in a:
        return {"kind": "schema", "dtypes": {**a["dtypes"], **b["dtypes"]},
                "nulls": a["nulls"] + b["nulls"]}
    if "min" in a:
        return {"kind": a["kind"], "min": _extreme(min, a["min"], b["min"]),
                "max": _extreme(max, a["max"], b["max"])}
    values = heapq.nsmallest(PARTIAL_UNEXPECTED_COUNT, a["values"] + b["values"], key=_value_key)
    merged = {"kind": a["kind"], "nulls": a["nulls"] + b["nulls"],
              "unexpected": a["unexpected"] + b["unexpected"], "values": values}
    if "rows" in a or "rows" in b:  # a row_condition's rows, counted per chunk
        merged["rows"] = a.get("rows", 0) + b.get("rows", 0)
    if "kinds" in a or "kinds" in b:  # compound keys: the kind of each key column
        merged["kinds"] = {**a.get("kinds", {}), **b.get("kinds", {})}
    return merged


def _value_key(item: list) -> tuple:
    """(chunk order, row, value): the value breaks ties so merging stays commutative even when
    callers give no chunk order (then the sample is deterministic, not the first rows)."""
    order, row, value = item
    return (order, row, json.dumps(value))


def _extreme(pick, x, y):
    if x is None:
        return y
    return x if y is None else pick(x, y)


def merge_all(parts) -> dict:
    """Merge any number of partial metrics (the Beam CombineFn's body)."""
    merged: dict = {}
    for part in parts:
        merged = merge_metrics(merged, part)
    return merged


# ---------------------------------------------------------------- reference engine


def ge_chunk_metrics(table: pa.Table, suites: list[dict], order: Sequence = ()) -> dict:
    """Reference engine: GE's own pandas engine on the chunk, in :func:`chunk_metrics`'s format.

    Much slower (one GE validation per chunk, ~65 ms plus per-row cost); used when
    ``quality.engine == "great_expectations"`` and by the parity tests.
    """
    from expectations.validation.results import (
        ge_validate_chunk,  # imports GE: keep off the fast path
    )

    checks = compile_checks(suites)
    results = ge_validate_chunk(table, suites)
    entries = {}
    for check in checks:
        entries[check.id] = _entry_from_ge(check, results[check.id], table, list(order))
    return {"engine": "great_expectations", "rows": table.num_rows,
            "columns": list(table.column_names), "checks": entries}


def _entry_from_ge(check: Check, result, table: pa.Table, order: list) -> dict:
    """Translate one GE ExpectationValidationResult back into a partial metric entry."""
    if check.family == "table":
        return {}
    if check.family == "compound":
        # GE sees one chunk, and a key's duplicates may lie in others: the run-level count
        # comes from the keys step (duplicate_metrics), whatever the engine
        return _compound_entry(table, check)
    if check.family == "pair":
        return _pair_entry_from_ge(check, result, table, order)
    if check.column not in table.column_names:
        return {"missing": True}
    kind = column_kind(table.column(check.column).type)
    message = _raised(result.exception_info or {})
    if message:
        raise ReferenceEngineError(f"Great Expectations failed: {message}", where=check.where,
                                   fix="run with quality.engine: arrow, or correct the expectation")
    observed = result.result or {}
    if check.family == "schema":
        entry = _check_entry(table, check, {}, order)
        low, high = next(iter(entry["dtypes"].values()))
        expected = high if entry["nulls"] else low
        if observed.get("observed_value") != expected:
            raise ReferenceEngineError(
                f"Great Expectations sees dtype {observed.get('observed_value')!r} where the "
                f"arrow engine predicts {expected!r}", where=check.where,
                fix="report this as a Haina bug (pandas changed how it converts Arrow types)")
        return entry
    if check.family == "aggregate":
        value = encode(_python(observed.get("observed_value")), kind)
        return {"kind": kind, "min": value if check.type.endswith("min_to_be_between") else None,
                "max": value if check.type.endswith("max_to_be_between") else None}
    unexpected = observed.get("unexpected_count") or 0
    nulls = unexpected if check.type.endswith("not_be_null") else observed.get("missing_count", 0)
    rows = observed.get("partial_unexpected_index_list") or []
    values = [None if check.type.endswith("not_be_null") else encode(_python(v), kind)
              for v in observed.get("partial_unexpected_list") or []]
    entry = {"kind": kind, "nulls": nulls, "unexpected": unexpected,
             "values": [[order, int(r), v] for r, v in zip(rows, values)]}
    if check.condition is not None:
        entry["rows"] = observed.get("element_count") or 0
    return entry


def _pair_entry_from_ge(check: Check, result, table: pa.Table, order: list) -> dict:
    if any(c not in table.column_names for c in check.column_list):
        return {"missing": True}
    message = _raised(result.exception_info or {})
    if message:
        raise ReferenceEngineError(f"Great Expectations failed: {message}", where=check.where,
                                   fix="run with quality.engine: arrow, or correct the expectation")
    observed = result.result or {}
    kinds = {c: column_kind(table.column(c).type) for c in check.column_list}
    values = [[order, int(row), [encode(_python(v), kinds[c])
                                 for v, c in zip(pair, check.column_list)]]
              for row, pair in zip(observed.get("partial_unexpected_index_list") or [],
                                   observed.get("partial_unexpected_list") or [])]
    return {"kind": "pair", "kinds": kinds, "nulls": observed.get("missing_count", 0),
            "unexpected": observed.get("unexpected_count") or 0, "values": values}


def _raised(info: dict) -> str | None:
    """GE's exception message, flat (``raised_exception``) or nested per metric id."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0].get("exception_message")) if nested else None


def _python(value):
    """numpy / pandas scalars as plain Python (pd.Timestamp is a datetime subclass already)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value
