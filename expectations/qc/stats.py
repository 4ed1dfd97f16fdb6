"""QC statistics of a chunk, and their exact merge (pure numpy; consumed by the report).

``qc_stats`` returns, per variable: flag counts per test, aggregate counts per UTC day, a
fixed-edge histogram, a bounded series envelope and the first flagged rows::

    {"qc":       {var: {test: {"1": n, "2": n, "3": n, "4": n, "9": n}}},   # incl. "aggregate"
     "qc_daily": {var: {"YYYY-MM-DD": {"1": n, ...}}},
     "hist":     {var: {"edges", "counts", "under", "over", "thresholds"}},
     "series":   {var: {"level": k, "bins": {str(i): [n, lo, hi, n_suspect, n_fail,
                                                       flagged_lo, flagged_hi]}}},
     "samples":  {var: [row, ...]},             # the first SAMPLE_ROWS flagged rows, by time
     "quarantine_sample": [record, ...]}        # the first SAMPLE_ROWS quarantined records

Every part merges exactly, associatively and commutatively (:func:`merge_qc_stats`, ``{}`` the
identity), so the run's statistics do not depend on how rows fell into chunks:

- series bins are ``2**level`` minutes wide, aligned on the epoch; a chunk takes the finest
  level that gives at most :data:`SERIES_BINS` bins, a merge the finest level (at least both
  inputs') that keeps the union within it -- the level one pass over all rows would take;
- samples are ordered by (time, platform, profile, depth, value, ...) and cut to the first
  :data:`SAMPLE_ROWS`: the first flagged rows of the whole run, whatever the chunking.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

# all_within through its module: the min/max shortcut a test can switch off in one place
from expectations.qc import arrays
from expectations.qc import columns as cols
from expectations.qc import flags as fl
from expectations.qc.arrays import NAT
from expectations.qc.plan import QCPlan, VariablePlan, planned_columns

#: most bins in a variable's series envelope (the report's time-series plot)
SERIES_BINS = 300
#: flagged rows kept per variable, and quarantined records per run, for the report's tables
SAMPLE_ROWS = 50
_MINUTE_US = 60_000_000


# --------------------------------------------------------------------------- daily counts


def _day_index(table: pa.Table):
    """(valid mask or None, 16 × day offset per valid row, first day, one day?) per chunk."""
    def compute(_column):
        micros = cols.times(table).view(np.int64)
        if micros.size and micros.min() != NAT:  # no missing time
            first, last = (int(v) // 86_400_000_000 for v in (micros.min(), micros.max()))
            if first == last:  # one day (a grid's time step): no per-row day numbers needed
                return None, None, first, True
        valid = micros != NAT
        everything = bool(valid.all())
        days = (micros if everything else micros[valid]) // 86_400_000_000
        if days.size == 0:
            return None, None, None, False
        first, last = int(days.min()), int(days.max())
        return (None if everything else valid), (days - first) * 16, first, first == last
    return cols.memo("d", table, "time", compute)


def _daily(table: pa.Table, aggregate: np.ndarray, counted: dict[str, int]
           ) -> dict[str, dict[str, int]]:
    if "time" not in table.column_names:
        return {}
    valid, day_index, first, one_day = _day_index(table)
    if first is None:
        return {}
    if one_day and valid is None:  # a grid's chunk is one time step: the counts are the day's
        return {str(np.datetime64(first, "D")): dict(counted)}
    # count (day, flag) pairs with bincount: no sort per variable
    pair = day_index + aggregate[valid] if valid is not None else day_index + aggregate
    counts = np.bincount(pair)
    keys = np.flatnonzero(counts)
    counts = counts[keys]
    day_names = np.datetime_as_string((keys // 16 + first).astype("datetime64[D]")).tolist()
    out: dict[str, dict[str, int]] = {}
    for day, flag, count in zip(day_names, (keys % 16).tolist(), counts.tolist(), strict=True):
        out.setdefault(day, {})[str(flag)] = count  # one entry per (day, flag) pair, not per row
    return out


# --------------------------------------------------------------------------- histogram


def histogram(values: np.ndarray, edges: Sequence[float]) -> dict:
    """Counts of present ``values`` in uniform bins, plus those under and over the range
    (``-inf`` is under, ``+inf`` over: an infinity is a value, failed by the gross range test).

    Bin ``i`` holds ``floor((x - lo) / width) == i``; the top edge belongs to the last bin (as in
    ``numpy.histogram``). Computed as one scaled cast and a ``bincount``, about 3x faster than
    ``numpy.histogram``, whose exact-edge corrections cost two more passes.
    """
    bounds = np.asarray(edges, dtype=np.float64)
    bins = len(bounds) - 1
    low, high = float(bounds[0]), float(bounds[-1])
    # in the values' own precision: a float32 column bins in float32 (half the bytes to move;
    # only a value within float32 rounding of an inner edge can land in the neighbouring bin)
    kind = values.dtype.type if values.dtype.kind == "f" else np.float64
    if arrays.all_within(values, low, high):
        # the common chunk: every value finite and within the edges; no clipping, no masks
        scaled = values - kind(low)
        scaled *= kind(bins / (high - low))
        slots = np.bincount(scaled.astype(np.intp), minlength=bins + 1)
        counts = slots[:bins].copy()
        counts[-1] += int(slots[bins:].sum())  # the top edge (or a value rounded onto it)
        return {"counts": counts.tolist(), "under": 0, "over": 0}
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (values - kind(low)) * kind(bins / (high - low))
    # slots: 0 under (and -inf), 1..bins the bins, bins+1 at-or-over the top (and +inf),
    # bins+2 missing
    np.clip(scaled, -1, bins, out=scaled)
    scaled[np.isnan(values)] = bins + 1
    slots = np.bincount((scaled + 1).astype(np.intp), minlength=bins + 3)
    with np.errstate(invalid="ignore"):
        over = int(np.count_nonzero(values > high))
    counts = slots[1:bins + 1].copy()
    counts[-1] += int(slots[bins + 1]) - over  # values equal to the top edge
    return {"counts": counts.tolist(), "under": int(slots[0]), "over": over}


def _histogram(table: pa.Table, var: VariablePlan, edges: tuple[float, ...]) -> dict:
    found = histogram(cols.native_floats(table, var.name), edges)
    gross = var.tests.get("gross_range", {})
    fail = gross.get("fail") or (None, None)
    suspect = gross.get("suspect") or (None, None)
    return {"edges": list(edges), **found,
            "thresholds": {"fail_min": fail[0], "fail_max": fail[1],
                           "suspect_min": suspect[0], "suspect_max": suspect[1]}}


# --------------------------------------------------------------------------- series envelope


def _distinct_bins(minutes: np.ndarray, level: int) -> int:
    """Distinct bins of sorted unique minutes at ``level``."""
    if minutes.size == 0:
        return 0
    shifted = minutes >> level
    return 1 + int(np.count_nonzero(shifted[1:] != shifted[:-1]))


def _series_level(minutes: np.ndarray, start: int = 0) -> int:
    level = start
    while _distinct_bins(minutes, level) > SERIES_BINS:  # about log2(span / bins) steps
        level += 1
    return level


def _series_index(table: pa.Table):
    """(level, bin id per row with a valid time, valid mask or None) per chunk, shared by the
    variables: the finest level whose bins over this chunk's times are at most SERIES_BINS."""
    def compute(_column):
        micros = cols.times(table).view(np.int64)
        valid = micros != NAT
        everything = bool(valid.all())
        minutes = (micros if everything else micros[valid]) // _MINUTE_US
        if minutes.size == 0:
            return None
        low, high = int(minutes.min()), int(minutes.max())
        if low == high:
            return 0, None, low, (None if everything else valid)
        steps = np.diff(minutes)
        if (steps >= 0).all():  # a series in time order: distinct minutes without a sort
            distinct = minutes[np.concatenate([[True], steps > 0])]
        else:
            distinct = np.unique(minutes)
        level = _series_level(distinct)
        return level, minutes >> level, None, (None if everything else valid)
    return cols.memo("s", table, "time", compute)


def _reduce_bins(ids: np.ndarray, values: np.ndarray, bad: np.ndarray | None,
                 suspect: np.ndarray | None, fail: np.ndarray | None) -> dict[str, list]:
    """Per bin id: [n, lo, hi, n_suspect, n_fail, flagged lo, flagged hi]. ``bad``, ``suspect``
    and ``fail`` are None when nothing is flagged (most chunks: no masks to reduce)."""
    if ids.size > 1 and (np.diff(ids) < 0).any():  # a series chunk is usually in time order
        order = np.argsort(ids, kind="stable")
        ids, values = ids[order], values[order]
        bad, suspect, fail = (None if a is None else a[order] for a in (bad, suspect, fail))
    cuts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    finite = np.isfinite(values)
    everything = bool(finite.all())
    x = values if everything else np.where(finite, values, np.nan)

    def count(mask):
        if mask is None:
            return np.zeros(cuts.size, dtype=np.int64)
        total = np.concatenate([[0], np.cumsum(mask)])
        return total[np.append(cuts[1:], mask.size)] - total[cuts]

    with np.errstate(invalid="ignore"):
        sizes = np.diff(np.append(cuts, x.size)) if everything else count(finite)
        parts = [sizes, np.fmin.reduceat(x, cuts), np.fmax.reduceat(x, cuts), count(suspect),
                 count(fail)]
        if bad is not None and bad.any():
            flagged = np.where(bad, x, np.nan)
            parts += [np.fmin.reduceat(flagged, cuts), np.fmax.reduceat(flagged, cuts)]
        else:
            parts += [np.full(cuts.size, np.nan)] * 2
    out = {}
    for i, key in enumerate(ids[cuts].tolist()):  # one entry per bin (at most SERIES_BINS)
        entry = [_number(p[i]) for p in parts]
        if entry[0] or entry[3] or entry[4]:
            out[str(key)] = entry
    return out


def _number(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _series(table: pa.Table, var: VariablePlan, aggregate: np.ndarray,
            counted: dict[str, int]) -> dict | None:
    if "time" not in table.column_names:
        return None
    index = _series_index(table)
    if index is None:
        return None
    level, ids, single, valid = index
    values = cols.native_floats(table, var.name)
    x = values if valid is None else values[valid]
    flagged = bool(counted.get("3") or counted.get("4"))
    if flagged:  # masks only where something is flagged
        agg = aggregate if valid is None else aggregate[valid]
        suspect, fail = agg == fl.SUSPECT, agg == fl.FAIL
        bad = suspect | fail
    else:
        suspect = fail = bad = None
    if ids is None:  # one minute (a grid's time step): the chunk is one bin, no grouping
        return {"level": level, "bins": _one_bin(single, x, bad, suspect, fail)}
    return {"level": level, "bins": _reduce_bins(ids, x, bad, suspect, fail)}


def _one_bin(key: int, x: np.ndarray, bad, suspect, fail) -> dict[str, list]:
    if x.size and arrays.all_within(x, -np.inf, np.inf):  # all finite: two reductions
        n, lo, hi = x.size, x.min(), x.max()
    else:
        finite = x[np.isfinite(x)]
        n = finite.size
        lo, hi = (finite.min(), finite.max()) if n else (None, None)
    entry = [int(n), _number(lo), _number(hi), 0, 0, None, None]
    if bad is not None:
        flagged = x[bad & np.isfinite(x)]
        entry[3:] = [int(suspect.sum()), int(fail.sum()),
                     _number(flagged.min()) if flagged.size else None,
                     _number(flagged.max()) if flagged.size else None]
    return {str(key): entry} if entry[0] or entry[3] or entry[4] else {}


def _coarsen(series: dict, level: int) -> dict:
    shift = level - series["level"]
    if shift == 0:
        return series
    bins: dict[str, list] = {}
    for key, entry in series["bins"].items():  # loops over bins, never rows
        target = str(int(key) >> shift)
        bins[target] = _merge_bin(bins[target], entry) if target in bins else list(entry)
    return {"level": level, "bins": bins}


def _low(a, b):
    return b if a is None else a if b is None else min(a, b)


def _high(a, b):
    return b if a is None else a if b is None else max(a, b)


def _merge_bin(a: list, b: list) -> list:
    return [a[0] + b[0], _low(a[1], b[1]), _high(a[2], b[2]), a[3] + b[3], a[4] + b[4],
            _low(a[5], b[5]), _high(a[6], b[6])]


def merge_series(a: dict, b: dict) -> dict:
    """The envelope of both, at the finest level (at least both inputs') within SERIES_BINS."""
    level = max(a["level"], b["level"])
    left, right = _coarsen(a, level), _coarsen(b, level)
    bins = dict(left["bins"])
    for key, entry in right["bins"].items():
        bins[key] = _merge_bin(bins[key], entry) if key in bins else list(entry)
    merged = {"level": level, "bins": dict(sorted(bins.items(), key=lambda kv: int(kv[0])))}
    keys = np.array(sorted(int(k) for k in merged["bins"]), dtype=np.int64)
    finer = _series_level(keys) if keys.size else 0
    return _coarsen(merged, level + finer) if finer else merged


# --------------------------------------------------------------------------- flagged rows


def _iso(micros: np.ndarray) -> list:
    stamps = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [None if m == NAT else s + "Z" for m, s in zip(micros.tolist(), stamps.tolist(), strict=True)]


def _cells(table: pa.Table, name: str | None, rows: np.ndarray) -> list:
    if name is None or name not in table.column_names:
        return [None] * len(rows)
    values = table.column(name).take(pa.array(rows)).to_pylist()
    return [_number(v) if isinstance(v, float) else v for v in values]


def _value_text(value) -> Any:
    """JSON-safe value: infinities as strings (they are values, failed by the gross range)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None if isinstance(value, float) and math.isnan(value) else value


def _numeric_keys(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, value) that order numbers, then -inf/+inf, then missing: as :func:`_rank`."""
    kind = np.where(np.isfinite(x), 0, np.where(np.isinf(x), 1, 2))
    return kind, np.where(kind == 0, x, np.where(kind == 1, np.sign(x), 0.0))


def _rank(value) -> tuple[int, float]:
    if isinstance(value, str):  # "inf" / "-inf"
        return 1, (1.0 if value == "inf" else -1.0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value)) if math.isfinite(value) else (2, 0.0)
    return 2, 0.0


def _sample_key(row: dict):
    return (row["time"] is None, row["time"] or "", *_rank(row.get("depth")),
            *_rank(row["value"]), json.dumps(row, sort_keys=True, default=str))


def _first(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=_sample_key)[:SAMPLE_ROWS]


def _candidates(table: pa.Table, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The flagged rows that can be among the first SAMPLE_ROWS: sorted by (time, depth, value)
    in numpy, cut after the SAMPLE_ROWS-th with its ties (the rest of the key decides those)."""
    micros = (cols.times(table).view(np.int64)[rows] if "time" in table.column_names
              else np.full(rows.size, NAT))
    time_key = np.where(micros == NAT, np.iinfo(np.int64).max, micros)
    depth = cols.depth(table)
    depth_kind, depth_key = _numeric_keys(depth[rows] if depth is not None
                                          else np.full(rows.size, np.nan))
    value_kind, value_key = _numeric_keys(values[rows])
    order = np.lexsort((value_key, value_kind, depth_key, depth_kind, time_key))
    if order.size <= SAMPLE_ROWS:
        return rows[order]
    nth = order[SAMPLE_ROWS - 1]
    keep = np.arange(order.size) < SAMPLE_ROWS
    tied = np.ones(order.size, dtype=bool)
    for part in (time_key, depth_kind, depth_key, value_kind, value_key):
        tied &= part[order] == part[nth]
    return rows[order[keep | tied]]


def _samples(table: pa.Table, plan: QCPlan, var: VariablePlan, aggregate: np.ndarray,
             test_flags: dict[str, np.ndarray], reasons: pa.Array | None) -> list[dict]:
    """The first SAMPLE_ROWS rows (by time, depth, value, ...) whose aggregate is SUSPECT or
    FAIL, with every test that flagged them and the quarantine reason when a hard test did."""
    rows = np.flatnonzero((aggregate == fl.SUSPECT) | (aggregate == fl.FAIL))
    if rows.size == 0:
        return []
    values = cols.native_floats(table, var.name)
    rows = _candidates(table, rows, values)
    micros = (cols.times(table).view(np.int64)[rows] if "time" in table.column_names
              else np.full(rows.size, NAT))
    columns = {k: _cells(table, name, rows) for k, name in (
        ("platform", plan.platform_column), ("profile", plan.profile_column),
        ("depth", "depth"), ("latitude", "latitude"), ("longitude", "longitude"))}
    why = (reasons.take(pa.array(rows)).to_pylist() if reasons is not None
           else [None] * rows.size)
    out = []
    chosen = values[rows].astype(np.float64).tolist()
    for i, (when, value) in enumerate(zip(_iso(micros), chosen, strict=True)):  # about SAMPLE_ROWS rows
        tests = {t: int(f[rows[i]]) for t, f in test_flags.items()
                 if f[rows[i]] in (fl.SUSPECT, fl.FAIL)}
        out.append({"time": when, "value": _value_text(value), "flag": int(aggregate[rows[i]]),
                    "tests": tests, **{k: v[i] for k, v in columns.items()},
                    "quarantined": why[i]})
    return _first(out)


_RECORD_ORDER = ("source_file", "position", "reason", "detail", "raw")


def quarantine_sample(quarantine: pa.Table | None) -> list[dict]:
    """The first SAMPLE_ROWS quarantined records (by source file, position, reason, detail,
    raw; missing ones last) with their content, for the report."""
    if quarantine is None or quarantine.num_rows == 0:
        return []
    ordered = quarantine.sort_by([(c, "ascending") for c in _RECORD_ORDER])
    return _first_records(ordered.slice(0, SAMPLE_ROWS).to_pylist())


def _record_key(record: dict):
    return tuple(part for c in _RECORD_ORDER
                 for part in (record.get(c) is None, record.get(c) or (0 if c == "position"
                                                                        else "")))


def _first_records(records: list[dict]) -> list[dict]:
    return sorted(records, key=_record_key)[:SAMPLE_ROWS]


# --------------------------------------------------------------------------- the stats


def qc_stats(table_with_flags: pa.Table, plan: QCPlan,
             flags: dict[str, np.ndarray] | None = None, reasons: pa.Array | None = None
             ) -> dict:
    """Flag counts per variable and test, aggregate per UTC day, fixed-edge histograms, series
    envelopes and the first flagged rows.

    ``flags`` maps flag column names to their NumPy values when the caller has them (``apply_qc``
    does); otherwise they are read from the table. ``reasons`` (one per row, null where kept)
    marks the flagged rows that a hard test quarantined.
    """
    if not plan.enabled:
        return {}

    def values_of(name: str) -> np.ndarray:
        return flags[name] if flags is not None and name in flags \
            else cols.flag_values(table_with_flags, name)

    def counted(name: str) -> dict[str, int]:
        if name not in memo:
            memo[name] = fl.counts(values_of(name))
        return memo[name]

    memo: dict[str, dict[str, int]] = {}
    stats: dict[str, Any] = {"qc": {}, "qc_daily": {}, "hist": {}, "series": {}, "samples": {}}
    columns = planned_columns(plan)
    row_cols = {test: name for name, _, test in columns if name == f"qc_{test}"}
    for var in plan.variables:
        own = {test: name for name, src, test in columns if src == var.name}
        per_test = {test: counted(name) for test, name in own.items()}
        per_test.update({test: counted(name) for test, name in row_cols.items()})
        stats["qc"][var.name] = per_test
        name = f"{var.name}_qc"
        aggregate = values_of(name)
        stats["qc_daily"][var.name] = _daily(table_with_flags, aggregate, counted(name))
        if var.hist_edges is not None:
            stats["hist"][var.name] = _histogram(table_with_flags, var, var.hist_edges)
        series = _series(table_with_flags, var, aggregate, counted(name))
        if series is not None:
            stats["series"][var.name] = series
        if counted(name).get("3") or counted(name).get("4"):
            tests = {test: values_of(n) for test, n in {**own, **row_cols}.items()
                     if test != "aggregate" and (counted(n).get("3") or counted(n).get("4"))}
            stats["samples"][var.name] = _samples(table_with_flags, plan, var, aggregate, tests,
                                                  reasons)
    return stats


def with_quarantine_sample(stats: dict, quarantine: pa.Table | None) -> dict:
    """``stats`` plus the first quarantined records of a chunk (connector's and QC's)."""
    sample = quarantine_sample(quarantine)
    return {**stats, "quarantine_sample": sample} if sample else stats


# --------------------------------------------------------------------------- merging


def _merge_counts(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b), key=str)}


def _merge_nested(a: dict, b: dict, depth: int) -> dict:
    if depth == 0:
        return _merge_counts(a, b)
    return {k: (_merge_nested(a[k], b[k], depth - 1) if k in a and k in b
                else (a[k] if k in a else b[k])) for k in sorted(set(a) | set(b))}


def _merge_hist(a: dict, b: dict) -> dict:
    if a["edges"] != b["edges"]:
        raise ValueError("cannot merge QC histograms with different edges "
                         f"({a['edges'][:2]}... vs {b['edges'][:2]}...): plan both chunks with "
                         "the same QCPlan")
    return {**a, "counts": [x + y for x, y in zip(a["counts"], b["counts"], strict=True)],
            "under": a["under"] + b["under"], "over": a["over"] + b["over"]}


def _merge_by_key(a: dict, b: dict, merge) -> dict:
    return {k: (merge(a[k], b[k]) if k in a and k in b else (a[k] if k in a else b[k]))
            for k in sorted(set(a) | set(b))}


_MERGES = {
    "qc": lambda a, b: _merge_nested(a, b, 2),
    "qc_daily": lambda a, b: _merge_nested(a, b, 2),
    "hist": lambda a, b: _merge_by_key(a, b, _merge_hist),
    "series": lambda a, b: _merge_by_key(a, b, merge_series),
    "samples": lambda a, b: _merge_by_key(a, b, lambda x, y: _first(x + y)),
    "quarantine_sample": lambda a, b: _first_records(a + b),
}


def merge_qc_stats(a: dict, b: dict) -> dict:
    """Exact, associative and commutative merge of two :func:`qc_stats`; ``{}`` is identity."""
    if not a:
        return b
    if not b:
        return a
    return {key: (_MERGES[key](a[key], b[key]) if key in a and key in b
                  else (a[key] if key in a else b[key]))
            for key in _MERGES if key in a or key in b}
