"""Inline SVG plots for the validation report: QC flag fractions over time, value histograms,
the series itself with its flagged samples marked.

Each function takes the aggregated statistics a run already computed (daily flag counts, binned
histograms, a binned series envelope: tens to thousands of numbers, never the rows) and returns
one ``<svg>`` element as a
string. No JavaScript, fonts or external files: the report must open offline from an archive.
Coordinates are computed with numpy on whole arrays; Python only loops to emit SVG elements.
"""
from __future__ import annotations

import html
import math

import numpy as np

#: QC flag codes as they appear in the stats (JSON keys are strings), in drawing order
FLAGS: tuple[str, ...] = ("1", "2", "3", "4", "9")
FLAG_NAMES = {"1": "good", "2": "not evaluated", "3": "suspect", "4": "fail", "9": "missing"}
FLAG_COLOURS = {"1": "#2f9e44", "2": "#868e96", "3": "#f59f00", "4": "#e03131", "9": "#dee2e6"}
THRESHOLD_COLOURS = {"fail": "#e03131", "suspect": "#f59f00"}

_AXIS = "#495057"
_GRID = "#e9ecef"
_FONT = "font-family='system-ui,sans-serif' font-size='11'"
_MARGIN = {"left": 52, "right": 16, "top": 30, "bottom": 30}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float) -> str:
    """A tick or threshold label: short, no float noise (0.30000000000000004 -> 0.3)."""
    return f"{value:.6g}"


def nice_ticks(low: float, high: float, target: int = 5) -> np.ndarray:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return np.array([low]) if math.isfinite(low) else np.array([])
    raw = (high - low) / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * min((m for m in (1, 2, 2.5, 5, 10) if m * power >= raw), default=10)
    first = math.ceil(low / step - 1e-9) * step
    ticks = np.arange(first, high + step * 1e-9, step)
    return np.round(ticks, 12)


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    # no xmlns: inline SVG in HTML5 does not need it, and the page names no URL at all
    return (f"<svg width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' role='img' aria-label='{_e(label)}' {_FONT}>"
            f"<title>{_e(label)}</title>" + "".join(body) + "</svg>")


def _rect(x, y, w, h, fill: str, tip: str = "") -> str:
    title = f"<title>{_e(tip)}</title>" if tip else ""
    return (f"<rect x='{x:.2f}' y='{y:.2f}' width='{w:.2f}' height='{h:.2f}' fill='{fill}'>"
            f"{title}</rect>")


def _text(x, y, text: str, anchor: str = "middle", fill: str = _AXIS, extra: str = "") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' fill='{fill}' {extra}>"
            f"{_e(text)}</text>")


def _label(x, y, text: str, anchor: str, fill: str) -> str:
    """Text drawn over bars: a white halo keeps it readable on any colour."""
    return _text(x, y, text, anchor, fill, "font-weight='600' paint-order='stroke' "
                 "stroke='#fff' stroke-width='3' stroke-linejoin='round'")


def _legend(x0: float, y: float, flags=FLAGS) -> list[str]:
    out, x = [], x0
    for flag in flags:
        name = f"{flag} {FLAG_NAMES[flag]}"
        out += [_rect(x, y - 9, 10, 10, FLAG_COLOURS[flag]), _text(x + 14, y, name, "start")]
        x += 24 + 6.2 * len(name)
    return out


# --- flag fractions over time ------------------------------------------------------------------
def daily_flag_counts(daily: dict) -> tuple[np.ndarray, np.ndarray]:
    """``{"YYYY-MM-DD": {flag: n}}`` -> (sorted days as datetime64[D], counts ``(days, FLAGS)``)."""
    keys = sorted(daily)
    days = np.array(keys, dtype="datetime64[D]")
    counts = np.array([[int(daily[k].get(f, 0) or 0) for f in FLAGS] for k in keys],
                      dtype=np.int64).reshape(len(keys), len(FLAGS))
    return days, counts


def bin_days(days: np.ndarray, counts: np.ndarray, max_bars: int) -> tuple[np.ndarray, int, np.ndarray]:
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
    body = _percent_grid(left, top, plot_w, plot_h)
    for i in np.flatnonzero(totals):
        tip = _bin_tip(starts[i], bin_days_, sums[i], totals[i])
        for j, flag in enumerate(FLAGS):
            if heights[i, j] > 0:
                body.append(_rect(left + i * bar_w, y_top[i, j], max(bar_w - 0.5, 0.6),
                                  heights[i, j], FLAG_COLOURS[flag], tip))
    body += _date_axis(starts, bin_days_, left, top + plot_h, plot_w)
    body += _legend(left, 14)
    label = f"{title}: fraction of QC flags per {unit}" if title else f"QC flags per {unit}"
    body.append(_text(width - _MARGIN["right"], 14, f"one bar per {unit}", "end"))
    return _svg(width, height, label, body)


def _bin_tip(start, n_days: int, sums: np.ndarray, total: int) -> str:
    end = start + (n_days - 1)
    when = str(start) if n_days == 1 else f"{start} to {end}"
    parts = ", ".join(f"{FLAG_NAMES[f]} {n:,}" for f, n in zip(FLAGS, sums.tolist()) if n)
    return f"{when}: {total:,} values; {parts}"


def _percent_grid(left: float, top: float, plot_w: float, plot_h: float) -> list[str]:
    out = []
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - fraction)
        out.append(f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='{_GRID}'/>")
        out.append(_text(left - 6, y + 4, f"{fraction:.0%}", "end"))
    return out


def _date_axis(starts: np.ndarray, n_days: int, left: float, y: float, plot_w: float) -> list[str]:
    first = starts[0]
    span = int((starts[-1] - first).astype(int)) + n_days
    # about six labels; month precision once the record spans more than a year
    fmt_month = span > 366
    out = [(f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{_AXIS}'/>")]
    offsets = np.unique(np.linspace(0, span - 1, num=min(6, span)).astype(int))
    for k, offset in enumerate(offsets):
        x = left + plot_w * (offset + 0.5) / span
        day = first + int(offset)
        label = str(day)[:7] if fmt_month else str(day)
        # the outer labels grow inwards so they are not cut at the plot's edges
        anchor = "start" if k == 0 and len(offsets) > 1 else (
            "end" if k == len(offsets) - 1 and len(offsets) > 1 else "middle")
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y:.1f}' y2='{y + 4:.1f}' "
                   f"stroke='{_AXIS}'/>")
        out.append(_text(x, y + 16, label, anchor))
    return out


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
    x = left + plot_w * (edges - lo) / ((hi - lo) or 1.0)
    bar_h = plot_h * scaled / peak
    body = [(f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{top + plot_h:.1f}' "
             f"y2='{top + plot_h:.1f}' stroke='{_AXIS}'/>")]
    body += _count_axis(left, top, plot_h, peak, log)
    for i in np.flatnonzero(counts):
        tip = f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}): {int(counts[i]):,} values"
        body.append(_rect(x[i], top + plot_h - bar_h[i], max(x[i + 1] - x[i] - 0.5, 0.6),
                          bar_h[i], "#4c6ef5", tip))
    for tick in nice_ticks(lo, hi, 8):
        tx = left + plot_w * (tick - lo) / ((hi - lo) or 1.0)
        body.append(_text(tx, top + plot_h + 16, _fmt(tick)))
    body += _thresholds(hist.get("thresholds") or {}, lo, hi, left, top, plot_w, plot_h)
    body += _out_of_range(hist, left, plot_w)
    label = f"{title}: histogram" + (f" ({units})" if units else "") + (" — log scale" if log
                                                                        else "")
    body.append(_text(left, 14, label, "start", extra="font-weight='600'"))
    return _svg(width, height, label, body)


def _use_log(counts: np.ndarray) -> bool:
    nonzero = counts[counts > 0]
    return nonzero.size > 0 and nonzero.max() / nonzero.min() > 100


def _count_axis(left: float, top: float, plot_h: float, peak: float, log: bool) -> list[str]:
    out = []
    if log:
        top_power = math.floor(peak)
        levels = [(float(np.log10(1 + 10 ** p)), f"{10 ** p:,}") for p in range(top_power + 1)]
    else:
        levels = [(float(t), f"{int(t):,}") for t in nice_ticks(0, peak, 4) if t == int(t)]
    for value, label in levels:
        y = top + plot_h * (1 - value / peak)
        out.append(f"<line x1='{left}' x2='{left - 4}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='{_AXIS}'/>")
        out.append(_text(left - 6, y + 4, label, "end"))
    return out


def _thresholds(thresholds: dict, lo: float, hi: float, left: float, top: float,
                plot_w: float, plot_h: float) -> list[str]:
    """One dashed line per threshold; one outside the binned range sits on the edge, labelled."""
    out = []
    present = [(k, float(v)) for k, v in sorted(thresholds.items(), key=lambda kv: str(kv[0]))
               if v is not None and math.isfinite(float(v))]
    for row, (name, value) in enumerate(present):
        kind = name.split("_")[0]
        colour = THRESHOLD_COLOURS.get(kind, _AXIS)
        clamped = min(max(value, lo), hi)
        tx = left + plot_w * (clamped - lo) / ((hi - lo) or 1.0)
        off = "" if clamped == value else (" ◀" if value < lo else " ▶")
        anchor = "start" if tx < left + plot_w / 2 else "end"
        dx = 4 if anchor == "start" else -4
        out.append(f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='{top:.1f}' y2='{top + plot_h:.1f}' "
                   f"stroke='{colour}' stroke-width='1.6' stroke-dasharray='5 3'>"
                   f"<title>{_e(name)} = {_fmt(value)}</title></line>")
        out.append(_label(tx + dx, top + 11 + 13 * (row % 4), f"{name.replace('_', ' ')} "
                          f"{_fmt(value)}{off}", anchor, colour))
    return out


def _out_of_range(hist: dict, left: float, plot_w: float) -> list[str]:
    under, over = int(hist.get("under") or 0), int(hist.get("over") or 0)
    parts = ([f"◀ {under:,} below the binned range"] if under else []) + (
        [f"{over:,} above ▶"] if over else [])
    return [_text(left + plot_w, 14, ", ".join(parts), "end")] if parts else []


# --- the series -------------------------------------------------------------------------------
def series_arrays(series: dict) -> dict[str, np.ndarray]:
    """A series envelope (``expectations.qc.stats``: ``{"level": k, "bins": {id: [n, lo, hi,
    n_suspect, n_fail, flagged_lo, flagged_hi]}}``) as arrays sorted by bin start."""
    ids = np.array(sorted(int(k) for k in series.get("bins") or {}), dtype=np.int64)
    rows = [series["bins"][str(i)] for i in ids.tolist()]

    def column(j, kind=float):
        return np.array([np.nan if r[j] is None else r[j] for r in rows], dtype=kind)
    minutes = 2 ** int(series.get("level") or 0)
    return {"start": (ids * minutes).astype("datetime64[m]"), "minutes": np.int64(minutes),
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
    t0 = arrays["start"][0].astype(np.int64)
    span = int(arrays["start"][-1].astype(np.int64) - t0) + int(arrays["minutes"])
    x = left + plot_w * (arrays["start"].astype(np.int64) - t0) / span
    bar_w = max(plot_w * int(arrays["minutes"]) / span, 1.0)

    def y(v):
        return top + plot_h * (1 - (v - v_low) / (v_high - v_low))
    body = _value_axis(left, top, plot_w, plot_h, v_low, v_high)
    for i in np.flatnonzero(np.isfinite(lo)):
        tip = _series_tip(arrays, i)
        body.append(_rect(x[i], y(hi[i]), bar_w, max(y(lo[i]) - y(hi[i]), 1.0), "#74c0fc", tip))
    for i in np.flatnonzero((arrays["suspect"] + arrays["fail"]) > 0):
        colour = FLAG_COLOURS["4"] if arrays["fail"][i] else FLAG_COLOURS["3"]
        marks = {arrays["flag_lo"][i], arrays["flag_hi"][i]}
        for v in sorted(m for m in marks if np.isfinite(m)):
            body.append(f"<circle cx='{x[i] + bar_w / 2:.2f}' cy='{y(v):.2f}' r='3' "
                        f"fill='{colour}'><title>{_e(_series_tip(arrays, i))}</title></circle>")
    body += _time_axis(arrays["start"][0], span, left, top + plot_h, plot_w)
    body += [_rect(left, 6, 10, 10, "#74c0fc"), _text(left + 14, 15, "value range per bin",
                                                      "start")]
    body += _legend(left + 150, 15, ("3", "4"))
    label = (f"{title}: values over time" + (f" ({units})" if units else "")
             + f", {_bin_label(int(arrays['minutes']))} bins, flagged values marked")
    body.append(_text(width - _MARGIN["right"], 15, _bin_label(int(arrays["minutes"]))
                      + " per bin", "end"))
    return _svg(width, height, label, body)


def _bin_label(minutes: int) -> str:
    if minutes % 1440 == 0 and minutes >= 1440:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:.1f} h"


def _series_tip(arrays: dict, i: int) -> str:
    start = arrays["start"][i]
    end = start + np.timedelta64(int(arrays["minutes"]), "m")
    parts = [f"{str(start).replace('T', ' ')} to {str(end).replace('T', ' ')}",
             f"{int(arrays['n'][i]):,} values"]
    if np.isfinite(arrays["lo"][i]):
        parts.append(f"{_fmt(arrays['lo'][i])} to {_fmt(arrays['hi'][i])}")
    for key, name in (("suspect", "suspect"), ("fail", "fail")):
        if arrays[key][i]:
            parts.append(f"{int(arrays[key][i]):,} {name}")
    if np.isfinite(arrays["flag_lo"][i]):
        parts.append(f"flagged values {_fmt(arrays['flag_lo'][i])} to "
                     f"{_fmt(arrays['flag_hi'][i])}")
    return "; ".join(parts)


def _value_axis(left, top, plot_w, plot_h, low, high) -> list[str]:
    out = []
    for tick in nice_ticks(low, high, 4):
        ty = top + plot_h * (1 - (tick - low) / (high - low))
        out.append(f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{ty:.1f}' y2='{ty:.1f}' "
                   f"stroke='{_GRID}'/>")
        out.append(_text(left - 6, ty + 4, _fmt(tick), "end"))
    return out


def _time_axis(first, span_minutes: int, left: float, y: float, plot_w: float) -> list[str]:
    """About six labels: dates, or date and time on records shorter than three days."""
    out = [(f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{_AXIS}'/>")]
    offsets = np.unique(np.linspace(0, span_minutes, num=6).astype(np.int64))
    for k, offset in enumerate(offsets):
        x = left + plot_w * offset / span_minutes
        when = str(first + np.timedelta64(int(offset), "m"))
        label = when.replace("T", " ")[:16] if span_minutes < 3 * 1440 else when[:10]
        anchor = "start" if k == 0 else ("end" if k == len(offsets) - 1 else "middle")
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y:.1f}' y2='{y + 4:.1f}' "
                   f"stroke='{_AXIS}'/>")
        out.append(_text(x, y + 16, label, anchor))
    return out


def flag_bar_svg(counts: dict, *, width: int = 220, height: int = 14) -> str:
    """A single horizontal bar split by flag: the overview of one variable's final flags."""
    values = np.array([int(counts.get(f, 0) or 0) for f in FLAGS], dtype=np.int64)
    total = int(values.sum())
    if total == 0:
        return ""
    x = np.concatenate([[0.0], np.cumsum(values) / total * width])
    body = [_rect(x[j], 0, x[j + 1] - x[j], height, FLAG_COLOURS[f],
                  f"{FLAG_NAMES[f]}: {values[j]:,} ({values[j] / total:.2%})")
            for j, f in enumerate(FLAGS) if values[j]]
    return _svg(width, height, "share of final QC flags", body)
