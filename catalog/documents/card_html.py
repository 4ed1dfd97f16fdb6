"""The HTML dataset card: one self-contained page (inline CSS and SVG, no external URL).

Plots are drawn as SVG strings by pure functions over numpy arrays: a map of sample locations on
a graticule, rows per day (or month), and one histogram per variable. Text comes from the same
helpers as the Markdown card (:mod:`catalog.documents.card`), so both always say the same.
"""
from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from catalog.documents import card
from catalog.documents.croissant import attributions, licence_url

ACCENT = "#0b6e99"
POINT = "#0b6e99"
GRID = "#d0dbe3"
INK = "#1f2d3a"
MUTED = "#5b6b79"
#: above this many days the time plot shows rows per month, so bars stay wider than a pixel
MAX_DAY_BARS = 400


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def nice_step(span: float, target: int = 5) -> float:
    """A 1-2-5 step that cuts ``span`` into about ``target`` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def fmt(value: float) -> str:
    """Short tick label: no trailing zeros, thousands separators for big numbers."""
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _ticks(lo: float, hi: float, target: int = 5) -> np.ndarray:
    step = nice_step(hi - lo, target)
    start = math.ceil(lo / step) * step
    return np.arange(start, hi + step * 1e-9, step)


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
        return _empty_svg(width, 120, "no positions in this dataset (longitude/latitude null)")
    west, east, south, north = _map_extent(lon, lat)
    aspect = (north - south) / ((east - west) * max(math.cos(math.radians((north + south) / 2)),
                                                    0.1))
    left, top, right, bottom = 48, 12, 16, 30
    plot_w = width - left - right
    plot_h = int(min(max(plot_w * aspect, 160), 520))
    sx = lambda x: left + (x - west) / (east - west) * plot_w
    sy = lambda y: top + (north - y) / (north - south) * plot_h
    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#eef5f9"/>']
    parts += _graticule(west, east, south, north, sx, sy, left, top, plot_w, plot_h)
    # one path of zero-length round-capped segments draws thousands of dots compactly; the
    # loop is over at most MAX_MAP_POINTS sampled rows, never over the dataset
    xy = np.unique(np.round(np.column_stack([sx(lon), sy(lat)]), 1), axis=0)
    dots = "".join(f"M{x:.1f} {y:.1f}h0" for x, y in xy.tolist())
    size = 10 if len(xy) <= 20 else 6 if len(xy) <= 200 else 3.2  # a station is one dot: show it
    parts.append(f'<path d="{dots}" stroke="{POINT}" stroke-opacity="0.6" stroke-width="{size}" '
                 f'stroke-linecap="round" fill="none"/>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
                 f'stroke="{MUTED}" stroke-width="1"/>')
    return _svg(width, top + plot_h + bottom, "".join(parts),
                f"Map of {lon.size} sample locations")


def _graticule(west, east, south, north, sx, sy, left, top, w, h) -> list[str]:
    parts = []
    for x in _ticks(west, east, 6):
        parts.append(f'<line x1="{sx(x):.1f}" y1="{top}" x2="{sx(x):.1f}" y2="{top + h}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(sx(x), top + h + 16, f"{fmt(x)}°", "middle"))
    for y in _ticks(south, north, 5):
        parts.append(f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + w}" y2="{sy(y):.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(left - 6, sy(y) + 4, f"{fmt(y)}°", "end"))
    return parts


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
    if not per_day:
        return _empty_svg(width, 80, "no time column")
    labels, counts, unit = time_series(per_day)
    left, top, right, bottom = 64, 12, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(int(counts.max()), 1)
    bar_w = plot_w / len(counts)
    parts = [_y_axis(peak, left, top, plot_w, plot_h)]
    heights = counts / peak * plot_h
    parts += [f'<rect x="{left + i * bar_w + bar_w * 0.08:.2f}" y="{top + plot_h - hgt:.2f}" '
              f'width="{max(bar_w * 0.84, 0.8):.2f}" height="{hgt:.2f}" fill="{ACCENT}">'
              f'<title>{esc(lab)}: {int(c):,} rows</title></rect>'
              for i, (lab, c, hgt) in enumerate(zip(labels, counts.tolist(), heights.tolist()))
              if c]
    parts.append(_text(left, top + plot_h + 18, labels[0], "start"))
    if len(labels) > 1:
        parts.append(_text(left + plot_w, top + plot_h + 18, labels[-1], "end"))
    parts.append(_text(left + plot_w / 2, top + plot_h + 30, f"rows per {unit}", "middle"))
    return _svg(width, height, "".join(parts), f"Rows per {unit}")


def _y_axis(peak: float, left: float, top: float, w: float, h: float) -> str:
    parts = []
    for v in _ticks(0, peak, 4):
        y = top + h - v / peak * h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(left - 6, y + 4, fmt(v), "end"))
    return "".join(parts)


def svg_histogram(h: card.Histogram, title: str, *, width: int = 300, height: int = 176) -> str:
    left, top, right, bottom = 44, 24, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    # ~6.4 px per bold 11 px character: long CF names are cut rather than clipped by the SVG
    limit = int((width - 8) / 6.4)
    short = title if len(title) <= limit else title[:limit - 1] + "…"
    parts = [_text(4, 14, short, "start", weight="600", fill=INK)]
    counts = h.counts.astype(float)
    peak = max(counts.max(), 1.0)
    lo, hi = float(h.edges[0]), float(h.edges[-1])
    span = (hi - lo) or 1.0
    parts.append(_y_axis(peak, left, top, plot_w, plot_h))
    for a, b, c in zip(h.edges[:-1].tolist(), h.edges[1:].tolist(), counts.tolist()):
        x0, x1 = left + (a - lo) / span * plot_w, left + (b - lo) / span * plot_w
        bh = c / peak * plot_h
        parts.append(f'<rect x="{x0:.2f}" y="{top + plot_h - bh:.2f}" width="'
                     f'{max(x1 - x0 - 0.6, 0.6):.2f}" height="{bh:.2f}" fill="{ACCENT}">'
                     f'<title>{fmt(a)} to {fmt(b)}: {int(c):,}</title></rect>')
    parts.append(_text(left, top + plot_h + 14, fmt(lo), "start"))
    parts.append(_text(left + plot_w, top + plot_h + 14, fmt(hi), "end"))
    if h.below or h.above:
        parts.append(_text(left + plot_w / 2, top + plot_h + 30,
                           f"outside range: {h.below:,} below, {h.above:,} above", "middle",
                           fill="#a05a00"))
    return _svg(width, height, "".join(parts), f"Histogram of {title}")


def _text(x: float, y: float, text: str, anchor: str, *, weight: str = "400",
          fill: str = MUTED) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
            f'font-weight="{weight}" fill="{fill}">{esc(text)}</text>')


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" role="img" aria-label="{esc(label)}" '
            f'font-family="system-ui, -apple-system, Segoe UI, sans-serif">{body}</svg>')


def _empty_svg(width: int, height: int, message: str) -> str:
    return _svg(width, height, _text(width / 2, height / 2, message, "middle"), message)


# --- page ------------------------------------------------------------------------------------
CSS = """
*{box-sizing:border-box}body{margin:0;background:#f4f7f9;color:#1f2d3a;
font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px 32px 48px}
header{background:linear-gradient(120deg,#0b4f6c,#0b6e99 60%,#1a8fb8);color:#fff;
padding:26px 32px;border-radius:12px;margin-bottom:20px}
header h1{margin:0 0 6px;font-size:26px;line-height:1.25}
header .sub{opacity:.9;font-size:13px}.badges{margin-top:12px}
.badge{display:inline-block;background:rgba(255,255,255,.16);border:1px solid rgba(255,255,255,.35);
border-radius:999px;padding:2px 10px;margin:0 6px 6px 0;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:18px}
section{background:#fff;border-radius:10px;padding:18px 22px;box-shadow:0 1px 3px rgba(0,0,0,.08);
margin-bottom:18px}h2{font-size:16px;margin:0 0 12px;color:#0b4f6c}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e9ee;vertical-align:top;
overflow-wrap:anywhere}section{min-width:0}th,td.num,td.ok,td.bad{white-space:nowrap;
overflow-wrap:normal}
th{color:#5b6b79;font-weight:600;background:#f7fafc}td.num{text-align:right;
font-variant-numeric:tabular-nums}code{font-size:12px;background:#eef3f6;padding:1px 4px;
border-radius:4px}.attr{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px;
margin:6px 0;border-radius:4px}.ok{color:#1b7f3b;font-weight:600}.bad{color:#b42318;
font-weight:600}.hists{display:flex;flex-wrap:wrap;gap:10px}.muted{color:#5b6b79}
p.desc{margin:0 0 4px;max-width:900px}ul{margin:4px 0 0;padding-left:20px}
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>"
        for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body}</section>"


def _header(manifest: Mapping[str, Any], stats: card.CardStats, release: str | None) -> str:
    ds = manifest["dataset"]
    badges = [release and f"release {release}" or "draft (not released)", ds.get("licence"),
              f"{stats.rows:,} rows", f"{len(card.data_files(manifest))} file(s)",
              ds.get("classification")]
    badge_html = "".join(f'<span class="badge">{esc(b)}</span>' for b in badges if b)
    return (f"<header><h1>{esc(ds.get('title') or ds['name'])}</h1><div class=\"sub\">"
            f"<code style=\"background:rgba(255,255,255,.15);color:#fff\">{esc(ds['name'])}</code>"
            f" · {esc(card.version_line(manifest, release))}</div>"
            f"<div class=\"badges\">{badge_html}</div></header>")


def _licence_html(manifest: Mapping[str, Any]) -> str:
    ds = manifest["dataset"]
    owner = ds.get("owner") or {}
    url = licence_url(ds.get("licence"))
    # the licence URL is shown as text, not a link: the page must not point outside itself
    licence = esc(ds.get("licence")) + (f' <span class="muted">({esc(url)})</span>' if url else "")
    who = esc(owner.get("name") or "unknown") + (f" &lt;{esc(owner['email'])}&gt;"
                                                  if owner.get("email") else "")
    notes = attributions(manifest)
    attr = "".join(f'<div class="attr">{esc(n)}</div>' for n in notes) or \
        '<p class="muted">No attribution required by the sources.</p>'
    desc = f'<p class="desc">{esc((ds.get("description") or "").strip())}</p>' \
        if ds.get("description") else ""
    return _section("Description, licence and attribution", (
        f"{desc}<table><tbody><tr><th>licence</th><td>{licence}</td></tr><tr><th>owner</th>"
        f"<td>{who}</td></tr></tbody></table><p style=\"margin:10px 0 2px\"><b>Required "
        f"attribution</b></p>{attr}"))


def _validation_html(manifest: Mapping[str, Any]) -> str:
    rows = card.validation_rows(manifest)
    if not rows:
        return _section("Validation", '<p class="muted">Validation was not run.</p>')
    body = "".join(
        f"<tr><td>{esc(s)}</td><td class=\"{'ok' if r == 'passed' else 'bad'}\">{esc(r)}</td>"
        f"<td class=\"num\">{esc(m)}</td><td>{esc(n)}</td></tr>" for s, r, m, n in rows)
    return _section("Validation", "<table><thead><tr><th>suite</th><th>result</th><th>"
                    "expectations met</th><th>unexpected values</th></tr></thead><tbody>"
                    f"{body}</tbody></table>")


def _histograms_html(manifest: Mapping[str, Any], stats: card.CardStats) -> str:
    if not stats.histograms:
        return ""
    units = {c["name"]: (c.get("metadata") or {}).get("haina.units", "")
             for c in manifest.get("schema", [])}
    plots = "".join(svg_histogram(h, f"{name} [{units.get(name)}]" if units.get(name) else name)
                    for name, h in stats.histograms.items())
    note = (f'<p class="muted">Exact counts over all rows. Where a few values lie far from the '
            f'rest, the axis spans the central {100 - 200 * card.TAIL:g} % and the others are '
            f'counted below the plot.</p>')
    return _section("Variables", f'<div class="hists">{plots}</div>{note}')


def _counts_html(manifest: Mapping[str, Any], stats: card.CardStats) -> str:
    rows = manifest.get("rows") or {}
    out = _section("Rows", _table(["in", "written", "dropped (fill)", "quarantined"], [(
        f"{rows.get('in', 0):,}", f"{rows.get('written', 0):,}", f"{rows.get('dropped', 0):,}",
        f"{rows.get('rejected', 0):,}")], numeric=(0, 1, 2, 3)))
    if stats.splits:
        out += _section("Splits", _table(["split", "rows"], [
            (k, f"{v:,}") for k, v in sorted(stats.splits.items())], numeric=(1,)))
    if stats.qc:
        out += _section("QC flags", _table(["column", "flag", "rows"], [
            (col, card.qc_label(flag, col), f"{n:,}") for col, counts in stats.qc.items()
            for flag, n in sorted(counts.items())], numeric=(2,)))
    return out


def _changelog_html(changelog: Sequence[str] | None) -> str:
    if changelog is None:
        return ""
    items = "".join(f"<li>{esc(c)}</li>" for c in changelog) or "<li>no changes</li>"
    return _section("Changes since the previous release", f"<ul>{items}</ul>")


def _provenance_html(manifest: Mapping[str, Any]) -> str:
    run = manifest.get("run") or {}
    rows = [(s["uri"], s["kind"], f"{s['size']:,}", s["sha256"][:16] + "…")
            for s in manifest.get("sources", [])]
    head = (f"<p>Run <code>{esc(run.get('id'))}</code> with Haina {esc(run.get('code_version'))}"
            f" on {esc(run.get('runner'))}; recipe sha256 <code>{esc(run.get('recipe_sha256'))}"
            f"</code></p>")
    return _section("Provenance", head + _table(["source", "kind", "bytes", "sha256"], rows,
                                                numeric=(2,)))


def render_html(manifest: Mapping[str, Any], stats: card.CardStats, *,
                release: str | None = None, changelog: Sequence[str] | None = None) -> str:
    """The whole card as one HTML document without external resources."""
    ds = manifest["dataset"]
    coverage = _table(["", ""], card.coverage_rows(stats))
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
                                         "conversion"], card.schema_rows(manifest)))
            + _counts_html(manifest, stats) + _changelog_html(changelog)
            + _provenance_html(manifest))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(ds.get('title') or ds['name'])}: dataset card</title>"
            f"<style>{CSS}</style></head><body><main>{body}</main></body></html>\n")
