"""Sources that yield no rows: a failure, named per file, unless the recipe allows it.

A file of the wrong kind (netCDF given to ``ais_nmea``), or of only a header, fill values or
rejected records, is read "successfully" into nothing; committing that as a version hides the
problem. Pure functions over the plans and the run's per-source counts.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog.store import source_key
from connectors.base import SourcePlan
from pipelines.exceptions import EmptySourceError
from pipelines.recipe import Recipe

#: reasons named per source when it yields no rows
_TOP_REASONS = 3
#: sources named in the message when many yield no rows
_MAX_NAMED = 5


def check_not_empty(recipe: Recipe, plans: Sequence[tuple[int, SourcePlan]],
                    sources: Mapping[str, Mapping[str, Any]], carried_rows: int) -> None:
    """Fail when a source with bytes yields no rows, or the version would hold none at all
    (``carried_rows``: the data rows of files carried over from the previous version)."""
    empty = [(i, p) for i, p in plans
             if p.size > 0 and sources.get(source_key(i, p.uri), {}).get("rows_out", 0) == 0]
    if not empty and (carried_rows or any(rec["rows_out"] for rec in sources.values())):
        return
    empty = empty or list(plans)
    named = "; ".join(why_empty(recipe.sources[i].kind, plan, sources.get(source_key(i, plan.uri)))
                      for i, plan in empty[:_MAX_NAMED]) or "no source file is left to read"
    more = f"; and {len(empty) - _MAX_NAMED} more" if len(empty) > _MAX_NAMED else ""
    raise EmptySourceError(
        f"no rows to commit: {named}{more}; no version was committed. Fix: check that each file "
        f"is of its source's kind and holds records, or set `allow_empty: true` in "
        f"{recipe.path or 'the recipe'} to commit an empty version")


def why_empty(kind: str, plan: SourcePlan, rec: Mapping[str, Any] | None) -> str:
    """One phrase: the file, and why it yielded nothing (its top quarantine reasons)."""
    rec = rec or {"rows_in": 0, "rows_dropped": 0, "rows_quarantined": 0,
                  "quarantine_reasons": {}}
    what = f"{plan.uri} ({plan.size:,} bytes, kind {kind})"
    if plan.size == 0:
        return f"{what} is empty"
    if rec["rows_in"] == 0:
        return f"{what} holds no records"
    parts = []
    if rec["rows_quarantined"]:
        top = sorted(rec["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in top[:_TOP_REASONS])
        parts.append(f"{rec['rows_quarantined']:,} quarantined ({reasons})")
    if rec["rows_dropped"]:
        parts.append(f"{rec['rows_dropped']:,} dropped as fill/missing values")
    return f"{what}: {rec['rows_in']:,} records read, none kept: {' and '.join(parts)}"
