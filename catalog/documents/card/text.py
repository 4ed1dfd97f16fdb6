"""What the card says, as rows of text: the Markdown and the HTML card render the same rows, so
both always say the same (a schema, a coverage, a validation verdict and a version line)."""
from __future__ import annotations

from typing import Any

from catalog.documents.card.stats import CardStats
from catalog.storage.manifest import Manifest
from expectations.qc.flags import FLAG_NAMES


def schema_rows(manifest: Manifest) -> list[tuple[Any, ...]]:
    """(column, type, units, standard_name, from, conversion) per column."""
    rows = []
    for c in manifest.schema:
        m = c.metadata
        source = m.get("haina.source_name") or ""
        if m.get("haina.source_units"):
            source += f" ({m['haina.source_units']})"
        rows.append((c.name, c.type, m.get("haina.units", ""),
                     m.get("haina.standard_name", ""), source, m.get("haina.conversion", "")))
    return rows



def qc_label(value: str, column: str = "_qc") -> str:
    """``4 (fail)`` for a QARTOD ``_qc`` column; source flags keep their bare value."""
    if not column.endswith("_qc"):
        return value
    try:
        return f"{value} ({FLAG_NAMES[int(value)]})"
    except (ValueError, KeyError):
        return value


def coverage_rows(stats: CardStats) -> list[tuple[str, str]]:
    cov = stats.coverage_dict()
    rows = []
    if "time_min" in cov:
        rows.append(("time (UTC)", f"{cov['time_min']} to {cov['time_max']}"))
    if "bbox" in cov:
        w, s, e, n = cov["bbox"]
        rows.append(("longitude", f"{w:.4f} to {e:.4f} °E"))
        rows.append(("latitude", f"{s:.4f} to {n:.4f} °N"))
    if "depth" in cov:
        lo, hi = (v + 0.0 for v in cov["depth"])  # + 0.0 turns -0.0 into 0.0
        rows.append(("depth", f"{lo:g} to {hi:g} m"))
    elif "depth" in stats.nulls:
        rows.append(("depth", "not reported (null)"))
    rows.append(("rows", f"{stats.rows:,}"))
    if stats.per_day:
        rows.append(("days with data", f"{len(stats.per_day):,}"))
    return rows


def validation_rows(manifest: Manifest) -> list[tuple[Any, ...]]:
    rows = []
    for suite in manifest.validation:
        notes = "; ".join(f"{u.get('column')}: {u.get('unexpected_count'):,} of "
                          f"{u.get('element_count') or 0:,} unexpected ({u.get('expectation')})"
                          for u in suite.get("unexpected") or [])
        rows.append((suite.get("suite"), "passed" if suite.get("success") else "failed",
                     f"{suite.get('successful')}/{suite.get('evaluated')}", notes or "none"))
    return rows


def version_line(manifest: Manifest, release: str | None) -> str:
    v = manifest.version
    if release:
        return f"Release {release} (version {v.id}, created {_seconds(v.created_at)})"
    return f"Draft version {v.id} (created {_seconds(v.created_at)}; not released)"


def _seconds(iso: str | None) -> str:
    """``2026-11-26T20:29:13.665272Z`` -> ``2026-11-26T20:29:13Z``: a card is read by people."""
    return iso.split(".")[0] + "Z" if iso and "." in iso else str(iso)
