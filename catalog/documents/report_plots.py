"""Inline SVG plots for the validation report: QC flag fractions over time, value histograms,
the series itself with its flagged samples marked.

Each function takes the aggregated statistics a run already computed (daily flag counts, binned
histograms, a binned series envelope: tens to thousands of numbers, never the rows) and returns
one ``<svg>`` element as a string, drawn with the documents' kit (:mod:`catalog.documents.svg`).
Coordinates are computed with numpy on whole arrays; Python only loops to emit SVG elements.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from catalog.documents import style, svg
from catalog.documents.style import FLAG_COLOURS, FLAG_NAMES, FLAGS

_MARGIN = {"left": 52, "right": 16, "top": 30, "bottom": 30}


def _flag_legend(x: float, y: float, flags: tuple[str, ...] = FLAGS) -> list[str]:
    return svg.legend(x, y, [(FLAG_COLOURS[f], f"{f} {FLAG_NAMES[f]}") for f in flags])


# --- flag fractions over time ------------------------------------------------------------------
def daily_flag_counts(daily: dict) -> tuple[np.ndarray, np.ndarray]:
    """``{"YYYY-MM-DD": {flag: n}}`` -> (sorted days as datetime64[D], counts ``(days, FLAGS)``)."""
    keys = sorted(daily)
    days = np.array(keys, dtype="datetime64[D]")
    counts = np.array([[int(daily[k].get(f, 0) or 0) for f in FLAGS] for k in keys],
                      dtype=np.int64).reshape(len(keys), len(FLAGS))
    return days, counts


def bin_days(days: np.ndarray, counts: np.ndarray,
             max_bars: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Sum daily counts into at most ``max_bars`` bins of equal length (in whole days).

    Returns (bin start days, bin length in days, summed counts ``(bins, FLAGS)``). Days without
    data give empty bins, so gaps in the record stay visible as gaps.
    """
    first = days.min()
    span = int((days.max() - first).astype(int)) + 1
    width = max(1, math.ceil(span / max_bars))
    index = ((days - first).astype(int) // width).astype(np.intp)
    n_bins = int(index.max()) + 1
    sums = np.zeros((n_bins, counts.shape[1]), dtype=np.int64)
    np.add.at(sums, index, counts)  # unbuffered: several days may fall in one bin
    starts = first + np.arange(n_bins) * width
    return starts, width, sums


def flag_fraction_svg(daily: dict, *, title: str = "", width: int = 1060, height: int = 210,
                      max_bars: int = 160) -> str:
    """Stacked bars of the fraction of each QC flag per day (or per N-day bin on long records)."""
    if not daily:
        return ""
    days, counts = daily_flag_counts(daily)
    starts, bin_days_, sums = bin_days(days, counts, max_bars)
    totals = sums.sum(axis=1)
    fractions = np.divide(sums, totals[:, None], out=np.zeros(sums.shape, dtype=float),
                          where=totals[:, None] > 0)
    left, top = _MARGIN["left"], _MARGIN["top"]
    plot_w = width - left - _MARGIN["right"]
    plot_h = height - top - _MARGIN["bottom"]
    bar_w = plot_w / len(starts)
    # stack bottom-up in FLAGS order: cumulative fractions give each segment's top and bottom
    upper = np.cumsum(fractions, axis=1)
    y_top = top + plot_h * (1 - upper)
    heights = plot_h * fractions
    unit = "day" if bin_days_ == 1 else f"{bin_days_}-day bin"
    percents = [0.0, 0.25, 0.5, 0.75, 1.0]
    body = svg.horizontal_grid(percents, [f"{p:.0%}" for p in percents],
                               svg.linear(0.0, 1.0, top + plot_h, -plot_h), left, plot_w)
    for i in np.flatnonzero(totals):
        tip = _bin_tip(starts[i], bin_days_, sums[i], int(totals[i]))
        for j, flag in enumerate(FLAGS):
            if heights[i, j] > 0:
                body.append(svg.rect(left + i * bar_w, y_top[i, j], max(bar_w - 0.5, 0.6),
                                     heights[i, j], FLAG_COLOURS[flag], tip))
    body += _date_axis(starts, bin_days_, left, top + plot_h, plot_w)
    body += _flag_legend(left, 14)
    label = f"{title}: fraction of QC flags per {unit}" if title else f"QC flags per {unit}"
    body.append(svg.text(width - _MARGIN["right"], 14, f"one bar per {unit}", "end"))
    return svg.document(width, height, label, body)


def _bin_tip(start: np.datetime64, n_days: int, sums: np.ndarray, total: int) -> str:
    end = start + (n_days - 1)
    when = str(start) if n_days == 1 else f"{start} to {end}"
    parts = ", ".join(f"{FLAG_NAMES[f]} {n:,}"
                      for f, n in zip(FLAGS, sums.tolist(), strict=True) if n)
    return f"{when}: {total:,} values; {parts}"


def _date_axis(starts: np.ndarray, n_days: int, left: float, y: float,
               plot_w: float) -> list[str]:
    first = starts[0]
    span = int((starts[-1] - first).astype(int)) + n_days
    # about six labels; month precision once the record spans more than a year
    offsets = np.unique(np.linspace(0, span - 1, num=min(6, span)).astype(int)).tolist()
    labels = [str(first + offset)[:7 if span > 366 else 10] for offset in offsets]
    positions = [left + plot_w * (offset + 0.5) / span for offset in offsets]
    return [svg.line(left, y, left + plot_w, y, style.MUTED)] + svg.x_axis_labels(
        positions, labels, y)


# --- histograms --------------------------------------------------------------------------------
def histogram_svg(hist: dict, *, title: str = "", units: str = "", width: int = 1060,
                  height: int = 230) -> str:
    """Bars of binned counts with the QC thresholds drawn as dashed vertical lines.

    Counts spanning more than two orders of magnitude are drawn on a log scale, so that a handful
    of outliers next to thousands of good values is still visible.
    """
    edges = np.asarray(hist.get("edges") or [], dtype=float)
    counts = np.asarray(hist.get("counts") or [], dtype=float)
    if edges.size < 2 or counts.size != edges.size - 1:
        return ""
    left, top = _MARGIN["left"], _MARGIN["top"] + 14
    plot_w = width - left - _MARGIN["right"]
    plot_h = height - top - _MARGIN["bottom"]
    lo, hi = float(edges[0]), float(edges[-1])
    log = _use_log(counts)
    scaled = np.log10(1 + counts) if log else counts
    peak = float(scaled.max()) or 1.0
    x = svg.linear(lo, hi, left, plot_w)
    tips = [f"[{svg.fmt(a)}, {svg.fmt(b)}): {int(c):,} values"
            for a, b, c in zip(edges[:-1].tolist(), edges[1:].tolist(), counts.tolist(),
                               strict=True)]
    body = [svg.line(left, top + plot_h, left + plot_w, top + plot_h, style.MUTED)]
    body += _count_axis(left, top, plot_h, peak, log)
    body += svg.bars(x(edges[:-1]), x(edges[1:]), plot_h * scaled / peak, top + plot_h,
                     style.HISTOGRAM, tips, gap=0.5)
    body += [svg.text(float(x(tick)), top + plot_h + 16, svg.fmt(tick))
             for tick in svg.nice_ticks(lo, hi, 8).tolist()]
    body += _thresholds(hist.get("thresholds") or {}, x, lo, hi, top, plot_h, left + plot_w / 2)
    body += _out_of_range(hist, left, plot_w)
    label = f"{title}: histogram" + (f" ({units})" if units else "") + (" — log scale" if log
                                                                        else "")
    body.append(svg.bold(left, 14, label, fill=style.MUTED))
    return svg.document(width, height, label, body)


def _use_log(counts: np.ndarray) -> bool:
    nonzero = counts[counts > 0]
    return bool(nonzero.size > 0 and nonzero.max() / nonzero.min() > 100)


def _count_axis(left: float, top: float, plot_h: float, peak: float, log: bool) -> list[str]:
    """Count ticks on the left: powers of ten on a log scale, round counts otherwise."""
    if log:
        levels = [(float(np.log10(1 + 10 ** p)), f"{10 ** p:,}")
                  for p in range(math.floor(peak) + 1)]
    else:
        levels = [(float(t), f"{int(t):,}") for t in svg.nice_ticks(0, peak, 4) if t == int(t)]
    y = svg.linear(0.0, peak, top + plot_h, -plot_h)
    out = []
    for value, label in levels:
        out.append(svg.line(left, y(value), left - 4, y(value), style.MUTED))
        out.append(svg.text(left - 6, y(value) + 4, label, "end"))
    return out


def _thresholds(thresholds: dict, x: svg.Scale, lo: float, hi: float, top: float,
                plot_h: float, middle: float) -> list[str]:
    """One dashed line per threshold; one outside the binned range sits on the edge, labelled."""
    out = []
    present = [(k, float(v)) for k, v in sorted(thresholds.items(), key=lambda kv: str(kv[0]))
               if v is not None and math.isfinite(float(v))]
    for row, (name, value) in enumerate(present):
        colour = style.THRESHOLD_COLOURS.get(name.split("_")[0], style.MUTED)
        clamped = min(max(value, lo), hi)
        tx = float(x(clamped))
        off = "" if clamped == value else (" ◀" if value < lo else " ▶")
        anchor = "start" if tx < middle else "end"
        out.append(svg.line(tx, top, tx, top + plot_h, colour,
                            extra="stroke-width='1.6' stroke-dasharray='5 3'",
                            tip=f"{name} = {svg.fmt(value)}"))
        out.append(svg.halo(tx + (4 if anchor == "start" else -4), top + 11 + 13 * (row % 4),
                            f"{name.replace('_', ' ')} {svg.fmt(value)}{off}", anchor, colour))
    return out


def _out_of_range(hist: dict, left: float, plot_w: float) -> list[str]:
    under, over = int(hist.get("under") or 0), int(hist.get("over") or 0)
    parts = ([f"◀ {under:,} below the binned range"] if under else []) + (
        [f"{over:,} above ▶"] if over else [])
    return [svg.text(left + plot_w, 14, ", ".join(parts), "end")] if parts else []


# --- the series -------------------------------------------------------------------------------
def series_arrays(series: dict) -> dict[str, Any]:
    """A series envelope (``expectations.qc.stats``: ``{"level": k, "bins": {id: [n, lo, hi,
    n_suspect, n_fail, flagged_lo, flagged_hi]}}``) as arrays sorted by bin start."""
    ids = np.array(sorted(int(k) for k in series.get("bins") or {}), dtype=np.int64)
    rows = [series["bins"][str(i)] for i in ids.tolist()]

    def column(j: int) -> np.ndarray:
        return np.array([np.nan if r[j] is None else r[j] for r in rows], dtype=float)
    minutes = 2 ** int(series.get("level") or 0)
    return {"start": (ids * minutes).astype("datetime64[m]"), "minutes": minutes,
            "n": column(0), "lo": column(1), "hi": column(2), "suspect": column(3),
            "fail": column(4), "flag_lo": column(5), "flag_hi": column(6)}


def series_svg(series: dict, *, title: str = "", units: str = "", width: int = 1060,
               height: int = 240) -> str:
    """The values over time: per time bin, a bar from the smallest to the largest value, and the
    flagged values marked (orange: suspect, red: fail, at the bin's extreme flagged values).

    Bins are 2**level minutes wide (at most a few hundred per variable), so a gap in the record
    is an empty stretch and one bad sample in a long record is still a visible marker.
    """
    arrays = series_arrays(series) if series else {}
    if not arrays or arrays["start"].size == 0:
        return ""
    lo, hi = arrays["lo"], arrays["hi"]
    values = np.concatenate([lo, hi, arrays["flag_lo"], arrays["flag_hi"]])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ""
    left, top = _MARGIN["left"], _MARGIN["top"] + 14
    plot_w = width - left - _MARGIN["right"]
    plot_h = height - top - _MARGIN["bottom"]
    v_low, v_high = float(values.min()), float(values.max())
    if v_high == v_low:
        v_low, v_high = v_low - 0.5, v_high + 0.5
    minutes = arrays["minutes"]
    t0 = int(arrays["start"][0].astype(np.int64))
    span = int(arrays["start"][-1].astype(np.int64)) - t0 + minutes
    x = left + plot_w * (arrays["start"].astype(np.int64) - t0) / span
    bar_w = max(plot_w * minutes / span, 1.0)
    y = svg.linear(v_low, v_high, top + plot_h, -plot_h)
    ticks = svg.nice_ticks(v_low, v_high, 4).tolist()
    body = svg.horizontal_grid(ticks, [svg.fmt(t) for t in ticks], y, left, plot_w)
    for i in np.flatnonzero(np.isfinite(lo)).tolist():
        body.append(svg.rect(x[i], y(hi[i]), bar_w, max(y(lo[i]) - y(hi[i]), 1.0), style.SERIES,
                             _series_tip(arrays, i)))
    for i in np.flatnonzero((arrays["suspect"] + arrays["fail"]) > 0).tolist():
        colour = FLAG_COLOURS["4"] if arrays["fail"][i] else FLAG_COLOURS["3"]
        marks = {arrays["flag_lo"][i], arrays["flag_hi"][i]}
        body += [svg.circle(x[i] + bar_w / 2, y(v), 3, colour, _series_tip(arrays, i))
                 for v in sorted(m for m in marks if np.isfinite(m))]
    body += _time_axis(arrays["start"][0], span, left, top + plot_h, plot_w)
    body += svg.legend(left, 15, [(style.SERIES, "value range per bin")])
    body += _flag_legend(left + 150, 15, ("3", "4"))
    label = (f"{title}: values over time" + (f" ({units})" if units else "")
             + f", {_bin_label(minutes)} bins, flagged values marked")
    body.append(svg.text(width - _MARGIN["right"], 15, _bin_label(minutes) + " per bin", "end"))
    return svg.document(width, height, label, body)


def _bin_label(minutes: int) -> str:
    if minutes % 1440 == 0 and minutes >= 1440:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:.1f} h"


def _series_tip(arrays: dict[str, Any], i: int) -> str:
    start = arrays["start"][i]
    end = start + np.timedelta64(arrays["minutes"], "m")
    parts = [f"{str(start).replace('T', ' ')} to {str(end).replace('T', ' ')}",
             f"{int(arrays['n'][i]):,} values"]
    if np.isfinite(arrays["lo"][i]):
        parts.append(f"{svg.fmt(arrays['lo'][i])} to {svg.fmt(arrays['hi'][i])}")
    for key in ("suspect", "fail"):
        if arrays[key][i]:
            parts.append(f"{int(arrays[key][i]):,} {key}")
    if np.isfinite(arrays["flag_lo"][i]):
        parts.append(f"flagged values {svg.fmt(arrays['flag_lo'][i])} to "
                     f"{svg.fmt(arrays['flag_hi'][i])}")
    return "; ".join(parts)


def _time_axis(first: np.datetime64, span_minutes: int, left: float, y: float,
               plot_w: float) -> list[str]:
    """About six labels: dates, or date and time on records shorter than three days."""
    offsets = np.unique(np.linspace(0, span_minutes, num=6).astype(np.int64)).tolist()
    stamps = [str(first + np.timedelta64(offset, "m")) for offset in offsets]
    labels = [s.replace("T", " ")[:16] if span_minutes < 3 * 1440 else s[:10] for s in stamps]
    positions = [left + plot_w * offset / span_minutes for offset in offsets]
    return [svg.line(left, y, left + plot_w, y, style.MUTED)] + svg.x_axis_labels(
        positions, labels, y)


def flag_bar_svg(counts: dict, *, width: int = 220, height: int = 14) -> str:
    """A single horizontal bar split by flag: the overview of one variable's final flags."""
    values = np.array([int(counts.get(f, 0) or 0) for f in FLAGS], dtype=np.int64)
    total = int(values.sum())
    if total == 0:
        return ""
    x = np.concatenate([[0.0], np.cumsum(values) / total * width])
    body = [svg.rect(x[j], 0, x[j + 1] - x[j], height, FLAG_COLOURS[f],
                     f"{FLAG_NAMES[f]}: {values[j]:,} ({values[j] / total:.2%})")
            for j, f in enumerate(FLAGS) if values[j]]
    return svg.document(width, height, "share of final QC flags", body)
