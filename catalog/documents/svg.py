"""One SVG kit for the documents' plots: ticks, scales, grids, bars, dots, text and escaping.

Why not a plotting library: matplotlib (the usual choice) is not a dependency, draws one figure in
~100 ms, and emits SVG with embedded fonts and ``xlink`` URLs several times larger than these
plots; Vega and friends need JavaScript. A document here must open offline as one HTML file, so
every plot is an inline ``<svg>`` string built by pure functions from a few numbers (bins, counts,
a bounded sample), never from the rows.

Conventions, so that tests can read what was drawn: attributes in single quotes, coordinates with
two decimals for shapes and one for lines and text, no ``xmlns`` (inline SVG in HTML5 needs none,
and a document names no URL at all), a ``<title>`` on the plot and on each shape that has a
tooltip. Colours come from :mod:`catalog.documents.style`.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from catalog.documents import style

#: the plots' font: the page's own, at a size that stays readable when a plot is scaled down
FONT = f"font-family='{style.FONT}' font-size='11'"

#: maps a data coordinate (or an array of them) to a pixel coordinate
Scale = Callable[[Any], Any]


def esc(value: Any) -> str:
    """Text safe inside an element or a quoted attribute (None is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: float, digits: int = 6) -> str:
    """A tick or value label: no float noise (0.30000000000000004 -> 0.3), thousands separated."""
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


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


def linear(low: float, high: float, start: float, length: float) -> Scale:
    """The scale mapping ``[low, high]`` onto ``[start, start + length]`` (a flipped axis has a
    negative length); a degenerate domain maps everything to ``start``."""
    span = (high - low) or 1.0
    return lambda value: start + (value - low) / span * length


def document(width: float, height: float, label: str, body: Iterable[str]) -> str:
    """One ``<svg>`` element: sized, labelled for screen readers, titled for a hover."""
    return (f"<svg width='{width:g}' height='{height:g}' viewBox='0 0 {width:g} {height:g}' "
            f"role='img' aria-label='{esc(label)}' {FONT}><title>{esc(label)}</title>"
            + "".join(body) + "</svg>")


def empty(width: float, height: float, message: str) -> str:
    """A plot with nothing to draw says why, where the plot would be."""
    return document(width, height, message, [text(width / 2, height / 2, message)])


def title(tip: str) -> str:
    return f"<title>{esc(tip)}</title>" if tip else ""


def rect(x: float, y: float, width: float, height: float, fill: str, tip: str = "") -> str:
    return (f"<rect x='{x:.2f}' y='{y:.2f}' width='{width:.2f}' height='{height:.2f}' "
            f"fill='{fill}'>{title(tip)}</rect>")


def line(x1: float, y1: float, x2: float, y2: float, stroke: str = style.GRID, *,
         extra: str = "", tip: str = "") -> str:
    return (f"<line x1='{x1:.1f}' x2='{x2:.1f}' y1='{y1:.1f}' y2='{y2:.1f}' stroke='{stroke}'"
            f"{' ' + extra if extra else ''}>{title(tip)}</line>")


def circle(cx: float, cy: float, r: float, fill: str, tip: str = "") -> str:
    return f"<circle cx='{cx:.2f}' cy='{cy:.2f}' r='{r:g}' fill='{fill}'>{title(tip)}</circle>"


def text(x: float, y: float, content: str, anchor: str = "middle", fill: str = style.MUTED,
         extra: str = "") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' fill='{fill}'"
            f"{' ' + extra if extra else ''}>{esc(content)}</text>")


def bold(x: float, y: float, content: str, anchor: str = "start", fill: str = style.INK) -> str:
    """A plot's own title line."""
    return text(x, y, content, anchor, fill, "font-weight='600'")


def halo(x: float, y: float, content: str, anchor: str, fill: str) -> str:
    """Text drawn over bars: a white halo keeps it readable on any colour."""
    return text(x, y, content, anchor, fill, "font-weight='600' paint-order='stroke' "
                "stroke='#fff' stroke-width='3' stroke-linejoin='round'")


def clip(content: str, width: float, char_px: float = 6.4) -> str:
    """Cut a label to what fits ``width`` pixels (~6.4 px per bold 11 px character) with "…",
    rather than let the SVG clip it mid-letter."""
    limit = int(width / char_px)
    return content if len(content) <= limit else content[:limit - 1] + "…"


def dots(x: np.ndarray, y: np.ndarray, colour: str, size: float) -> str:
    """Thousands of points as one path of zero-length round-capped segments (compact), drawn once
    per distinct pixel (to 0.1 px); the loop is over a bounded sample, never over a dataset."""
    xy = np.unique(np.round(np.column_stack([x, y]), 1), axis=0)
    moves = "".join(f"M{px:.1f} {py:.1f}h0" for px, py in xy.tolist())
    return (f"<path d='{moves}' stroke='{colour}' stroke-opacity='0.6' stroke-width='{size:g}' "
            f"stroke-linecap='round' fill='none'/>")


def horizontal_grid(values: Sequence[float], labels: Sequence[str], y: Scale, left: float,
                    width: float) -> list[str]:
    """A grid line across the plot at each value, labelled on the left."""
    out = []
    for value, label in zip(values, labels, strict=True):
        at = float(y(value))
        out.append(line(left, at, left + width, at))
        out.append(text(left - 6, at + 4, label, "end"))
    return out


def vertical_grid(values: Sequence[float], labels: Sequence[str], x: Scale, top: float,
                  height: float) -> list[str]:
    """A grid line down the plot at each value, labelled below it."""
    out = []
    for value, label in zip(values, labels, strict=True):
        at = float(x(value))
        out.append(line(at, top, at, top + height))
        out.append(text(at, top + height + 16, label))
    return out


def bars(x0: np.ndarray, x1: np.ndarray, heights: np.ndarray, base: float, fill: str,
         tips: Sequence[str], gap: float = 0.6) -> list[str]:
    """Vertical bars on a baseline at ``base``, ``gap`` px apart; zero-height bars are skipped."""
    return [rect(a, base - h, max(b - a - gap, 0.6), h, fill, tip)
            for a, b, h, tip in zip(x0.tolist(), x1.tolist(), heights.tolist(), tips, strict=True)
            if h > 0]


def x_axis_labels(positions: Sequence[float], labels: Sequence[str], y: float) -> list[str]:
    """Labels under an axis; the outer ones grow inwards so they are not cut at the edges."""
    out = []
    last = len(positions) - 1
    for k, (x, label) in enumerate(zip(positions, labels, strict=True)):
        anchor = "middle" if last == 0 else ("start" if k == 0 else
                                             "end" if k == last else "middle")
        out.append(line(x, y, x, y + 4, style.MUTED))
        out.append(text(x, y + 16, label, anchor))
    return out


def legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    """Colour swatches with their names, left to right."""
    out = []
    for colour, name in items:
        out += [rect(x, y - 9, 10, 10, colour), text(x + 14, y, name, "start")]
        x += 24 + 6.2 * len(name)
    return out


def graticule(west: float, east: float, south: float, north: float, x: Scale, y: Scale,
              frame: tuple[float, float, float, float]) -> list[str]:
    """Meridians and parallels at round degrees over a map ``frame`` (left, top, width, height),
    labelled in degrees below and to the left."""
    left, top, width, height = frame
    meridians = nice_ticks(west, east, 6).tolist()
    parallels = nice_ticks(south, north, 5).tolist()
    return (vertical_grid(meridians, [f"{fmt(v, 4)}°" for v in meridians], x, top, height)
            + horizontal_grid(parallels, [f"{fmt(v, 4)}°" for v in parallels], y, left, width))
