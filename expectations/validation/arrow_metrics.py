"""Exact expectation metrics per chunk with ``pyarrow.compute``: the role of a GE execution engine.

Great Expectations separates metric computation (execution engines) from expectation evaluation
(``Expectation._validate(metrics, ...)``). Workers compute, per chunk, exactly the metrics GE's
expectation classes read (row count, null count, unexpected count, first unexpected values, column
min/max); :func:`expectations.validation.merge.merge_metrics` combines them exactly across
chunks; and :func:`expectations.validation.judgement.suite_results` lets GE's own classes judge
the merged metrics. Uniqueness of compound keys spans chunks, so it is counted apart
(:mod:`expectations.validation.keys`); GE's own engine, for parity, is
:mod:`expectations.validation.ge.engine`.

This module does not import Great Expectations (``import great_expectations`` takes seconds):
workers import it for every run.

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

``kind`` and the values' JSON form are :mod:`expectations.validation.encoding`'s. ``values``
holds at most :data:`PARTIAL_UNEXPECTED_COUNT` unexpected values, ordered by ``(order, row)``
where ``order`` is the chunk's position in the dataset; that makes merging commutative and keeps
GE's "first N unexpected values in row order".
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from expectations.exceptions import MetricTypeError
from expectations.qc import flags
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc
from expectations.validation.checks import Check, RowCondition
from expectations.validation.encoding import (
    PARTIAL_UNEXPECTED_COUNT,
    column_kind,
    encode,
    encode_array,
)


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
            elif not np.isnan(self._raw_extremes(values)[0]):
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
                low, high = self._raw_extremes(values)
                if values.dtype.kind == "f" and (np.isnan(low) or np.isnan(high)):
                    missing = np.isnan(values).all()
                    low, high = (None, None) if missing else (np.nanmin(values),
                                                              np.nanmax(values))
                self._min_max = (None, None) if low is None else (low.item(), high.item())
        return self._min_max

    def _raw_extremes(self, values: np.ndarray) -> tuple:
        """NumPy's min and max of the numeric ``values`` (NaN when any value is NaN), computed
        once."""
        if self._raw is None:
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


def chunk_metrics(table: pa.Table, checks: Sequence[Check], order: Sequence = ()) -> dict:
    """Exact partial metrics of ``checks`` on one chunk; ``order`` is the chunk's position."""
    cache: dict[str, _ColumnStats] = {}
    entries = {}
    for check in checks:
        entries[check.id] = check_entry(table, check, cache, list(order))
    return {"engine": "arrow", "rows": table.num_rows, "columns": list(table.column_names),
            "checks": entries}


def check_entry(table: pa.Table, check: Check, cache: dict, order: list) -> dict:
    if check.family == "table":
        return {}
    if check.family == "compound":
        return compound_entry(table, check)
    if check.family == "pair":
        return _pair_entry(table, check, order)
    if check.column not in table.column_names:
        return {"missing": True}
    if check.condition is not None:
        return _conditional_entry(table, check, check.condition, order)
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


def _conditional_entry(table: pa.Table, check: Check, condition: RowCondition,
                       order: list) -> dict:
    """A map check on the rows its ``row_condition`` selects, as GE's pandas engine filters them
    before counting: ``rows`` is how many there are (GE's ``table.row_count`` of that domain).
    Sampled rows keep their position in the chunk, as pandas' filtered index does."""
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
                           zip(rows.to_pylist(), encode_array(values, stats.kind), strict=True)]
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
    if check.fail_span is None:
        raise MetricTypeError("the QARTOD gross range expectation has no fail span",
                              where=check.where, fix="give min_value and max_value")
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


# ---------------------------------------------------------------- column pairs (QARTOD location)


def _pair_entry(table: pa.Table, check: Check, order: list) -> dict:
    """Rows :func:`expectations.qc.position.location` flags FAIL, among the rows GE does not
    ignore."""
    a, b = check.column_list
    if a not in table.column_names or b not in table.column_names:
        return {"missing": True}
    columns = [table.column(a), table.column(b)]
    lat, lon = (c.cast(pa.float64()).to_numpy() for c in columns)  # nulls become NaN
    ignored = ignored_rows(table, check)
    bad = (qc_position.location(lat, lon, bbox=check.bbox) == flags.FAIL) & ~ignored
    kinds = {a: column_kind(columns[0].type), b: column_kind(columns[1].type)}
    entry = {"kind": "pair", "kinds": kinds, "nulls": int(ignored.sum()),
             "unexpected": int(bad.sum()), "values": []}
    if entry["unexpected"]:
        rows = pa.array(np.flatnonzero(bad)[:PARTIAL_UNEXPECTED_COUNT])
        picked = [encode_array(c.take(rows), kinds[n]) for c, n in zip(columns, (a, b), strict=True)]
        entry["values"] = [[order, r, [x, y]] for r, x, y in zip(rows.to_pylist(), *picked, strict=True)]
    return entry



# ---------------------------------------------------------------- rows GE ignores


def missing_rows(column: pa.ChunkedArray) -> np.ndarray:
    """Null or NaN per row: what pandas calls missing."""
    return np.asarray(pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False),
                      dtype=bool)


#: GE's ``ignore_row_if`` values (multicolumn and column-pair spellings) -> how missing values
#: of the columns combine into "skip this row" (None: never skip)
_IGNORE = {"all_values_are_missing": np.logical_and, "both_values_are_missing": np.logical_and,
           "any_value_is_missing": np.logical_or, "either_value_is_missing": np.logical_or,
           "never": None, "neither": None}


def ignored_rows(table: pa.Table, check: Check) -> np.ndarray:
    """Rows GE's ``ignore_row_if`` skips for the check's columns."""
    combine = _IGNORE[check.ignore_row_if]
    if combine is None or table.num_rows == 0:
        return np.zeros(table.num_rows, dtype=bool)
    return functools.reduce(combine, (missing_rows(table.column(c)) for c in check.column_list))


def compound_entry(table: pa.Table, check: Check) -> dict:
    if any(c not in table.column_names for c in check.column_list):
        return {"missing": True}
    kinds = {c: column_kind(table.column(c).type) for c in check.column_list}
    return {"kind": "compound", "kinds": kinds, "nulls": int(ignored_rows(table, check).sum()),
            "unexpected": 0, "values": []}


