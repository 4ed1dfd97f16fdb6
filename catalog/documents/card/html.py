"""The HTML dataset card: one self-contained page (inline CSS and SVG, no external URL).

Plots are drawn with the documents' SVG kit (:mod:`catalog.documents.svg`) by pure functions over
numpy arrays: a map of sample locations on a graticule, rows per day (or month), and one
histogram per variable. Text comes from the same rows as the Markdown card
(:mod:`catalog.documents.card.text`), so both always say the same; the look is the documents'
one stylesheet (:mod:`catalog.documents.style`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from catalog.documents import style, svg
from catalog.documents.card.stats import TAIL, CardStats, Histogram
from catalog.documents.card.text import (
    coverage_rows,
    qc_label,
    schema_rows,
    validation_rows,
    version_line,
)
from catalog.documents.manifest_view import attributions, data_files, licence_url
from catalog.documents.style import STYLESHEET
from catalog.documents.svg import esc
from catalog.storage.manifest import Manifest, Owner, RowCounts

#: above this many days the time plot shows rows per month, so bars stay wider than a pixel
MAX_DAY_BARS = 400


# --- map -------------------------------------------------------------------------------------
def _map_extent(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    west, east, south, north = lon.min(), lon.max(), lat.min(), lat.max()
    pad_x = max((east - west) * 0.06, 0.05)
    pad_y = max((north - south) * 0.06, 0.05)
    return (max(west - pad_x, -180.0), min(east + pad_x, 180.0),
            max(south - pad_y, -90.0), min(north + pad_y, 90.0))


def svg_map(lon: np.ndarray, lat: np.ndarray, *, width: int = 600) -> str:
    """Sample locations on an equirectangular graticule (x stretched by cos(latitude))."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = lon[ok], lat[ok]
    if lon.size == 0:
        return svg.empty(width, 120, "no positions in this dataset (longitude/latitude null)")
    west, east, south, north = _map_extent(lon, lat)
    aspect = (north - south) / ((east - west) * max(math.cos(math.radians((north + south) / 2)),
                                                    0.1))
    left, top, right, bottom = 48, 12, 16, 30
    plot_w = width - left - right
    plot_h = int(min(max(plot_w * aspect, 160), 520))
    x = svg.linear(west, east, left, plot_w)
    y = svg.linear(north, south, top, plot_h)
    frame = (left, top, plot_w, plot_h)
    parts = [svg.rect(left, top, plot_w, plot_h, style.SEA)]
    parts += svg.graticule(west, east, south, north, x, y, frame)
    distinct = len(np.unique(np.round(np.column_stack([x(lon), y(lat)]), 1), axis=0))
    size = 10 if distinct <= 20 else 6 if distinct <= 200 else 3.2  # a station is one dot: show it
    parts.append(svg.dots(x(lon), y(lat), style.ACCENT, size))
    parts.append(f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' "
                 f"stroke='{style.MUTED}' stroke-width='1'/>")
    return svg.document(width, top + plot_h + bottom, f"Map of {lon.size} sample locations",
                        parts)


# --- bars ------------------------------------------------------------------------------------
def time_series(per_day: Mapping[str, int]) -> tuple[list[str], np.ndarray, str]:
    """Labels and counts for every day (or month) from the first to the last, gaps as zeros."""
    days = sorted(dt.date.fromisoformat(d) for d in per_day)
    span = (days[-1] - days[0]).days + 1
    if span <= MAX_DAY_BARS:
        labels = [(days[0] + dt.timedelta(days=i)).isoformat() for i in range(span)]
        return labels, np.array([per_day.get(d, 0) for d in labels]), "day"
    months: dict[str, int] = {}
    for day, count in per_day.items():
        months[day[:7]] = months.get(day[:7], 0) + count
    first, last = days[0].year * 12 + days[0].month - 1, days[-1].year * 12 + days[-1].month - 1
    labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(first, last + 1)]
    return labels, np.array([months.get(m, 0) for m in labels]), "month"


def svg_time_bars(per_day: Mapping[str, int], *, width: int = 600, height: int = 190) -> str:
    """Rows per day (per month on long records) from the first day to the last."""
    if not per_day:
        return svg.empty(width, 80, "no time column")
    labels, counts, unit = time_series(per_day)
    left, top, right, bottom = 64, 12, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(int(counts.max()), 1)
    bar_w = plot_w / len(counts)
    starts = left + np.arange(len(counts)) * bar_w + bar_w * 0.08
    parts = _count_grid(peak, left, top, plot_w, plot_h)
    parts += svg.bars(starts, starts + np.maximum(bar_w * 0.84, 0.8), counts / peak * plot_h,
                      top + plot_h, style.ACCENT,
                      [f"{lab}: {int(c):,} rows" for lab, c in zip(labels, counts.tolist(),
                                                                    strict=True)], gap=0.0)
    parts.append(svg.text(left, top + plot_h + 18, labels[0], "start"))
    if len(labels) > 1:
        parts.append(svg.text(left + plot_w, top + plot_h + 18, labels[-1], "end"))
    parts.append(svg.text(left + plot_w / 2, top + plot_h + 30, f"rows per {unit}"))
    return svg.document(width, height, f"Rows per {unit}", parts)


def _count_grid(peak: float, left: float, top: float, w: float, h: float) -> list[str]:
    """Grid lines at round counts from 0 to ``peak``, labelled on the left."""
    ticks = svg.nice_ticks(0, peak, 4).tolist()
    return svg.horizontal_grid(ticks, [svg.fmt(v, 4) for v in ticks],
                               svg.linear(0.0, peak, top + h, -h), left, w)


def svg_histogram(h: Histogram, title: str, *, width: int = 300, height: int = 176) -> str:
    """One variable's display histogram; values beyond its range are counted under the plot."""
    left, top, right, bottom = 44, 24, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    counts = h.counts.astype(float)
    peak = max(counts.max(), 1.0)
    lo, hi = float(h.edges[0]), float(h.edges[-1])
    x = svg.linear(lo, hi, left, plot_w)
    edges = h.edges.astype(float)
    tips = [f"{svg.fmt(a, 4)} to {svg.fmt(b, 4)}: {int(c):,}"
            for a, b, c in zip(edges[:-1].tolist(), edges[1:].tolist(), counts.tolist(),
                               strict=True)]
    parts = [svg.bold(4, 14, svg.clip(title, width - 8))]
    parts += _count_grid(peak, left, top, plot_w, plot_h)
    parts += svg.bars(x(edges[:-1]), x(edges[1:]), counts / peak * plot_h, top + plot_h,
                      style.ACCENT, tips)
    parts.append(svg.text(left, top + plot_h + 14, svg.fmt(lo, 4), "start"))
    parts.append(svg.text(left + plot_w, top + plot_h + 14, svg.fmt(hi, 4), "end"))
    if h.below or h.above:
        parts.append(svg.text(left + plot_w / 2, top + plot_h + 30,
                              f"outside range: {h.below:,} below, {h.above:,} above",
                              fill=style.WARN))
    return svg.document(width, height, f"Histogram of {title}", parts)


# --- page ------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>"
        for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body}</section>"


def _header(manifest: Manifest, stats: CardStats, release: str | None) -> str:
    ds = manifest.dataset
    badges = [release and f"release {release}" or "draft (not released)", ds.licence,
              f"{stats.rows:,} rows", f"{len(data_files(manifest))} file(s)",
              ds.classification]
    badge_html = "".join(f'<span class="badge">{esc(b)}</span>' for b in badges if b)
    return (f"<header><h1>{esc(ds.title or ds.name)}</h1><div class=\"sub\">"
            f"<code style=\"background:rgba(255,255,255,.15);color:#fff\">{esc(ds.name)}</code>"
            f" · {esc(version_line(manifest, release))}</div>"
            f"<div class=\"badges\">{badge_html}</div></header>")


def _licence_html(manifest: Manifest) -> str:
    ds = manifest.dataset
    owner = ds.owner or Owner()
    url = licence_url(ds.licence)
    # the licence URL is shown as text, not a link: the page must not point outside itself
    licence = esc(ds.licence) + (f' <span class="muted">({esc(url)})</span>' if url else "")
    who = esc(owner.name or "unknown") + (f" &lt;{esc(owner.email)}&gt;"
                                          if owner.email else "")
    notes = attributions(manifest)
    attr = "".join(f'<div class="attr">{esc(n)}</div>' for n in notes) or \
        '<p class="muted">No attribution required by the sources.</p>'
    desc = f'<p class="desc">{esc((ds.description or "").strip())}</p>' \
        if ds.description else ""
    return _section("Description, licence and attribution", (
        f"{desc}<table><tbody><tr><th>licence</th><td>{licence}</td></tr><tr><th>owner</th>"
        f"<td>{who}</td></tr></tbody></table><p style=\"margin:10px 0 2px\"><b>Required "
        f"attribution</b></p>{attr}"))


def _validation_html(manifest: Manifest) -> str:
    rows = validation_rows(manifest)
    if not rows:
        return _section("Validation", '<p class="muted">Validation was not run.</p>')
    body = "".join(
        f"<tr><td>{esc(s)}</td><td class=\"{'ok' if r == 'passed' else 'bad'}\">{esc(r)}</td>"
        f"<td class=\"num\">{esc(m)}</td><td>{esc(n)}</td></tr>" for s, r, m, n in rows)
    return _section("Validation", "<table><thead><tr><th>suite</th><th>result</th><th>"
                    "expectations met</th><th>unexpected values</th></tr></thead><tbody>"
                    f"{body}</tbody></table>")


def _histograms_html(manifest: Manifest, stats: CardStats) -> str:
    if not stats.histograms:
        return ""
    units = {c.name: c.metadata.get("haina.units", "") for c in manifest.schema}
    plots = "".join(svg_histogram(h, f"{name} [{units.get(name)}]" if units.get(name) else name)
                    for name, h in stats.histograms.items())
    note = (f'<p class="muted">Exact counts over all rows. Where a few values lie far from the '
            f'rest, the axis spans the central {100 - 200 * TAIL:g} % and the others are '
            f'counted below the plot.</p>')
    return _section("Variables", f'<div class="hists">{plots}</div>{note}')


def _counts_html(manifest: Manifest, stats: CardStats) -> str:
    rows = manifest.rows or RowCounts()
    out = _section("Rows", _table(["in", "written", "dropped (fill)", "quarantined"], [(
        f"{rows.read or 0:,}", f"{rows.written or 0:,}", f"{rows.dropped or 0:,}",
        f"{rows.rejected or 0:,}")], numeric=(0, 1, 2, 3)))
    if stats.splits:
        out += _section("Splits", _table(["split", "rows"], [
            (k, f"{v:,}") for k, v in sorted(stats.splits.items())], numeric=(1,)))
    if stats.qc:
        out += _section("QC flags", _table(["column", "flag", "rows"], [
            (col, qc_label(flag, col), f"{n:,}") for col, counts in stats.qc.items()
            for flag, n in sorted(counts.items())], numeric=(2,)))
    return out


def _changelog_html(changelog: Sequence[str] | None) -> str:
    if changelog is None:
        return ""
    items = "".join(f"<li>{esc(c)}</li>" for c in changelog) or "<li>no changes</li>"
    return _section("Changes since the previous release", f"<ul>{items}</ul>")


def _provenance_html(manifest: Manifest) -> str:
    run = manifest.run
    rows = [(s.uri, s.kind, f"{s.size:,}", (s.sha256 or "")[:16] + "…")
            for s in manifest.sources]
    head = (f"<p>Run <code>{esc(run.id)}</code> with Haina {esc(run.code_version)}"
            f" on {esc(run.runner)}; recipe sha256 <code>{esc(run.recipe_sha256)}"
            f"</code></p>")
    return _section("Provenance", head + _table(["source", "kind", "bytes", "sha256"], rows,
                                                numeric=(2,)))


def render_html(manifest: Manifest, stats: CardStats, *,
                release: str | None = None, changelog: Sequence[str] | None = None) -> str:
    """The whole card as one HTML document without external resources."""
    ds = manifest.dataset
    coverage = _table(["", ""], coverage_rows(stats))
    map_svg = svg_map(stats.sample_lon, stats.sample_lat)
    n_points = int(np.isfinite(stats.sample_lon).sum()) if stats.sample_lon.size else 0
    top = (f'<div class="grid">{_licence_html(manifest)}'
           + _section("Coverage", coverage + '<div style="margin-top:14px">'
                      + svg_time_bars(stats.per_day) + "</div>") + "</div>")
    caption = (f"{n_points:,} of {stats.rows:,} rows, every n-th row of the version."
               if n_points else "No row of this version has a position.")
    map_section = _section("Sample locations", map_svg + f'<p class="muted">{caption}</p>')
    body = (_header(manifest, stats, release) + top
            + f'<div class="grid">{map_section}{_validation_html(manifest)}</div>'
            + _histograms_html(manifest, stats)
            + _section("Schema", _table(["column", "type", "units", "standard_name", "from",
                                         "conversion"], schema_rows(manifest)))
            + _counts_html(manifest, stats) + _changelog_html(changelog)
            + _provenance_html(manifest))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(ds.title or ds.name)}: dataset card</title>"
            f"<style>{STYLESHEET}</style></head><body><main>{body}</main></body></html>\n")
