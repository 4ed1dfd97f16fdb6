"""One look for every document: the palette the SVG plots draw with and the stylesheet the pages
embed, built from the same colours so that a flag chip in a table and its bar in a plot match.

The dataset card (:mod:`catalog.documents.card.html`) and the validation report
(:mod:`catalog.documents.report`) embed :data:`STYLESHEET` in a ``<style>`` element: a document
opens offline from a version folder or an archive, so it names no font, image or URL.

Components, by class: ``header``/``.badge`` (the card's banner), ``section`` (a white panel),
``.grid`` (panels side by side), tables with ``.num`` cells, ``.ok``/``.bad`` verdict words,
``.muted``/``.note`` secondary text, ``.attr`` (a required attribution), ``.hists`` (small
plots in a row), and the report's ``.verdict``, ``dl.meta``, ``.tiles``, ``.chip.fN`` (a QC flag
swatch), ``td.hitN``, ``.var`` (one variable's QC), ``details.rows``.
"""
from __future__ import annotations

#: text, and the secondary text of labels, notes and axes
INK = "#1f2d3a"
MUTED = "#5b6b79"
#: plot grid lines and table rules
GRID = "#dde5eb"
LINE = "#e3e9ee"
#: the page behind the panels, and the panels
PAGE = "#f4f7f9"
PANEL = "#ffffff"
#: headings, the card's banner and its bars
ACCENT = "#0b6e99"
ACCENT_DARK = "#0b4f6c"
#: links inside a page (its own anchors: a document links nowhere else)
LINK = "#1c7ed6"
OK = "#2b8a3e"
BAD = "#c92a2a"
#: a count that deserves a look (values outside a histogram's range, sums that disagree)
WARN = "#a05a00"
#: the map's sea, behind the sample locations
SEA = "#eef5f9"
#: the report's value plots: histogram bars and the series' per-bin range
HISTOGRAM = "#4c6ef5"
SERIES = "#74c0fc"
#: QC flag codes as the stats key them (strings), in drawing order, with names and colours
FLAGS: tuple[str, ...] = ("1", "2", "3", "4", "9")
FLAG_NAMES = {"1": "good", "2": "not evaluated", "3": "suspect", "4": "fail", "9": "missing"}
FLAG_COLOURS = {"1": "#2f9e44", "2": "#868e96", "3": "#f59f00", "4": "#e03131", "9": "#dee2e6"}
THRESHOLD_COLOURS = {"fail": FLAG_COLOURS["4"], "suspect": FLAG_COLOURS["3"]}
#: one font stack for pages and plots: the reader's system font, nothing downloaded
FONT = "system-ui,-apple-system,Segoe UI,Roboto,sans-serif"  # no quotes: fits an SVG attribute
MONO = "ui-monospace,monospace"


def _flag_chips() -> str:
    """``.fN`` swatches in the flag colours; MISSING is pale, so it gets an outline."""
    chips = "".join(f".f{flag}{{background:{colour}}}" for flag, colour in FLAG_COLOURS.items())
    return chips + ".f9{outline:1px solid #adb5bd}"


STYLESHEET = f"""
*{{box-sizing:border-box}}
body{{margin:0;background:{PAGE};color:{INK};font:14px/1.5 {FONT}}}
main{{max-width:1240px;margin:0 auto;padding:28px 32px 48px}}
h1{{font-size:26px;line-height:1.25;margin:0 0 6px}}
h2{{font-size:16px;margin:0 0 12px;color:{ACCENT_DARK}}}
h3{{font-size:15px;margin:18px 0 6px}}
svg{{max-width:100%;height:auto}}
a{{color:{LINK};text-decoration:none}}
header{{background:linear-gradient(120deg,{ACCENT_DARK},{ACCENT} 60%,#1a8fb8);color:#fff;
padding:26px 32px;border-radius:12px;margin-bottom:20px}}
header .sub{{color:inherit;opacity:.9;font-size:13px;margin:0}}
.badges{{margin-top:12px}}
.badge{{display:inline-block;background:rgba(255,255,255,.16);border:1px solid rgba(255,255,255,.35);
border-radius:999px;padding:2px 10px;margin:0 6px 6px 0;font-size:12px}}
.sub{{color:{MUTED};margin:0 0 16px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:18px}}
section{{background:{PANEL};border-radius:10px;padding:18px 22px;min-width:0;
box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:18px}}
table{{border-collapse:collapse;width:100%;font-size:13px;margin:0 0 12px}}
section>table:last-child{{margin-bottom:0}}
th,td{{text-align:left;padding:5px 8px;border-bottom:1px solid {LINE};vertical-align:top;
overflow-wrap:anywhere}}
th{{color:{MUTED};font-weight:600;background:#f7fafc;white-space:nowrap;overflow-wrap:normal}}
th.num,table.results th{{white-space:normal}}
table.results{{table-layout:fixed}}
tbody tr:nth-child(even){{background:#fcfdfd}}
tr.total td{{font-weight:600;border-top:2px solid #adb5bd}}
tr.failed{{box-shadow:inset 4px 0 0 {BAD}}}
.num{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}}
.ok{{color:{OK};font-weight:600;white-space:nowrap}}
.bad{{color:{BAD};font-weight:600;white-space:nowrap}}
code{{font:12px {MONO};background:#eef3f6;padding:1px 4px;border-radius:4px}}
.muted{{color:{MUTED}}}
.note{{color:{MUTED};font-size:12px}}
.warn{{color:{WARN};font-weight:600}}
.vals{{font:12px {MONO};color:#495057;word-break:break-word}}
.attr{{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px;margin:6px 0;
border-radius:4px}}
.hists{{display:flex;flex-wrap:wrap;gap:10px}}
p.desc{{margin:0 0 4px;max-width:900px}}
ul{{margin:4px 0 0;padding-left:20px}}
nav{{font-size:13px;margin:8px 0 18px}} nav a{{margin-right:14px}}
dl.meta{{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0 0 16px}}
dl.meta dt{{color:{MUTED}}} dl.meta dd{{margin:0;font:13px {MONO};word-break:break-all}}
.verdict{{border-radius:6px;padding:12px 16px;margin:12px 0;border-left:6px solid}}
.verdict.pass{{background:#ebfbee;border-color:{OK}}}
.verdict.fail{{background:#fff5f5;border-color:{BAD}}}
.verdict strong{{font-size:16px}} .verdict ul{{margin:6px 0 0;padding-left:20px}}
.verdict li{{font:12px {MONO};margin:2px 0}}
.tiles{{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}}
.tile{{border:1px solid {LINE};border-radius:6px;padding:8px 14px;min-width:150px}}
.tile .n{{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}}
.tile .l{{color:{MUTED};font-size:12px}}
.chip{{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}}
{_flag_chips()}
td.hit3{{background:#fff4e0}} td.hit4{{background:#ffe3e3}}
.var{{border:1px solid {LINE};border-radius:8px;padding:4px 16px 8px;margin:14px 0}}
.var svg{{display:block;margin:6px 0}}
details.rows{{margin:6px 0 10px}} details.rows summary{{cursor:pointer;color:{LINK}}}
footer{{color:{MUTED};font-size:12px;margin-top:32px}}
"""
