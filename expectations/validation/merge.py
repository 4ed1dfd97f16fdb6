"""Exact combination of partial metrics: chunks merge into a run, in any order.

:func:`merge_metrics` is associative and commutative with ``{}`` as its neutral element, so a
Beam ``CombineFn`` may merge chunks' metrics in whatever grouping its runner picks and get the
same run-level metrics as one pass over the whole dataset would.
"""
from __future__ import annotations

import heapq
import json

from expectations.validation.encoding import PARTIAL_UNEXPECTED_COUNT


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
