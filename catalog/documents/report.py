"""Validation report files: ``validation.json`` (machine) and ``validation.html`` (people).

Why our own page and not GE Data Docs: Data Docs need a File Data Context and write a site
(index plus one page per validation) whose templates load Bootstrap, jQuery, Font Awesome and
Vega from CDNs, so they do not open offline from a dataset folder or an archive; and they have no
place for what a Haina run adds to GE's results: QC flag counts per variable and test, flag
fractions over time, histograms against the QC thresholds, and the quarantine. This page is one
self-contained file (inline CSS and SVG, no JavaScript, no URL), rendered from the same
``to_json_dict()`` the JSON records, so both files show the same numbers. It shares its stylesheet
and SVG kit with the dataset card (:mod:`catalog.documents.style`, :mod:`catalog.documents.svg`).

``info`` keys used (all optional except ``dataset``): ``version_id`` (or ``version``),
``run_id``, ``recipe``, ``counts`` (rows_in/out/dropped/quarantined), ``qc`` (merged QC stats,
:mod:`expectations.qc.stats`: ``{"qc": {var: {test: {flag: n}}}, "qc_daily": {var: {day:
{flag: n}}}, "hist": {var: {...}}, "series": {var: {...}}, "samples": {var: [row, ...]},
"quarantine_sample": [record, ...]}``) and ``quarantine`` (``{"by_reason": {reason: n},
"by_source": {uri: {reason: n}}}``). The row-level parts (the series envelope, the first flagged
rows, the first quarantined records) are bounded samples the run collects, never the data.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from catalog.documents import report_plots as plots
from catalog.documents.style import FLAG_NAMES, FLAGS, STYLESHEET
from catalog.documents.svg import esc as _e
from catalog.jsonable import jsonable
from expectations.validation.gate import GateDecision, as_json

#: info keys drawn in their own sections rather than in the header list
_SECTION_KEYS = ("dataset", "version", "version_id", "run_id", "recipe", "counts", "qc",
                 "quarantine")
_COUNT_LABELS = (("rows_in", "rows in"), ("rows_out", "rows out"),
                 ("rows_dropped", "dropped (fill / land)"), ("rows_quarantined", "quarantined"))


def write_report(results, gate: GateDecision, info: dict, directory: Path) -> tuple[Path, Path]:
    """Write ``validation.json`` and ``validation.html`` into ``directory``; return both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document = jsonable({
        "info": info,
        "gate": gate.to_dict(),
        "results": [as_json(r) for r in results],
    })
    json_path = directory / "validation.json"
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False),
                         encoding="utf-8")
    html_path = directory / "validation.html"
    html_path.write_text(render_html(document), encoding="utf-8")
    return json_path, html_path


def render_html(document: dict) -> str:
    """The whole page from a validation document (the dict ``validation.json`` holds)."""
    info, gate = document.get("info") or {}, document["gate"]
    qc = info.get("qc") or {}
    sections = [
        ("rows", "Rows", _rows_section(info.get("counts") or {})),
        ("suites", "Expectation suites", _summary_table(document["results"])),
        ("qc", "QC flags", _qc_section(qc)),
        ("quarantine", "Quarantine", _quarantine_section(
            info.get("quarantine"), info.get("counts") or {}, qc.get("quarantine_sample"))),
        ("details", "Expectation results", "\n".join(
            _suite_section(s) for s in document["results"]) or "<p>No suites ran.</p>"),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Validation report {_e(info.get('dataset', ''))}</title>",
        f"<style>{STYLESHEET}</style></head><body><main>",
        _header(info, gate),
        "<nav>" + "".join(f"<a href='#{key}'>{_e(title)}</a>" for key, title, _ in sections)
        + "</nav>",
    ]
    parts += [f"<section id='{key}'><h2>{_e(title)}</h2>{body}</section>"
              for key, title, body in sections]
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts.append(f"<footer>Generated {_e(generated)} by Haina. QC flags: 1 good, 2 not "
                 "evaluated, 3 suspect, 4 fail, 9 missing.</footer></main></body></html>")
    return "\n".join(parts)


def _wbr(value) -> str:
    """Escaped text that may wrap after underscores: long CF names and expectation types fit a
    table cell without breaking short words anywhere."""
    return _e(value).replace("_", "_<wbr>")


def _count(value) -> str:
    return "" if value is None else f"{int(value):,}"


def _anchor(prefix: str, name) -> str:
    """An id safe in ``href='#...'``: the name with anything but [A-Za-z0-9_-.] replaced."""
    return prefix + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


# --- header ----------------------------------------------------------------------------------
def _header(info: dict, gate: dict) -> str:
    version = info.get("version_id", info.get("version"))
    fields = [("dataset", info.get("dataset")), ("version", version),
              ("run", info.get("run_id")), ("recipe", info.get("recipe"))]
    fields += [(k, v) for k, v in info.items()
               if k not in _SECTION_KEYS and not isinstance(v, (dict, list))]
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in fields if v is not None)
    return (f"<h1>Validation report: {_e(info.get('dataset', ''))}</h1>"
            f"<p class='sub'>Great Expectations results, QC flags and quarantine of one run</p>"
            f"<dl class='meta'>{meta}</dl>{_verdict(gate)}")


def _verdict(gate: dict) -> str:
    if gate["passed"]:
        return ("<div class='verdict pass' id='gate'><strong class='ok'>Gate: PASSED</strong>"
                "<div>Every expectation is within the recipe's allowed failing fraction.</div>"
                "</div>")
    items = "".join(f"<li>{_e(f)}</li>" for f in gate["failures"])
    n = len(gate["failures"])
    return (f"<div class='verdict fail' id='gate'><strong class='bad'>Gate: FAILED</strong>"
            f"<div>{n} failing expectation{'s' if n != 1 else ''}; no version was published."
            f"</div><ul>{items}</ul></div>")


def _rows_section(counts: dict) -> str:
    if not counts:
        return "<p class='note'>No row counts recorded for this run.</p>"
    cards = "".join(
        f"<div class='tile'><div class='n' data-count='{key}'>{_count(counts[key])}</div>"
        f"<div class='l'>{_e(label)}</div></div>"
        for key, label in _COUNT_LABELS if key in counts)
    return (f"<div class='tiles'>{cards}</div><p class='note'>rows in = rows out + dropped + "
            f"quarantined</p>")


# --- GE results ------------------------------------------------------------------------------
def _summary_table(results: list[dict]) -> str:
    if not results:
        return "<p>No expectation suites ran (quality checks disabled).</p>"
    head = ("<tr><th>suite</th><th>GE success</th><th class='num'>evaluated</th>"
            "<th class='num'>failed</th></tr>")
    rows = "".join(
        f"<tr><td><a href='#{_anchor('suite-', r['suite_name'])}'>{_e(r['suite_name'])}</a></td>"
        f"<td>{_mark(r['success'])}</td>"
        f"<td class='num'>{_e(r['statistics'].get('evaluated_expectations', ''))}</td>"
        f"<td class='num'>{_e(r['statistics'].get('unsuccessful_expectations', ''))}</td></tr>"
        for r in results)
    return (f"<table><thead>{head}</thead><tbody>{rows}</tbody></table><p class='note'>GE "
            f"success is GE's own verdict; the gate above applies the recipe's allowed failing "
            f"fractions on top of it.</p>")


def _mark(success) -> str:
    return "<span class='ok'>pass</span>" if success else "<span class='bad'>FAIL</span>"


def _suite_section(suite: dict) -> str:
    head = ("<tr><th>expectation</th><th>column</th><th>kwargs</th><th>success</th>"
            "<th class='num'>elements</th><th class='num'>unexpected</th>"
            "<th class='num'>unexpected %</th><th class='num'>missing</th>"
            "<th>observed / partial unexpected values</th></tr>")
    # the widths keep every suite's table aligned with the others
    rows = "".join(_expectation_row(r) for r in suite["results"])
    name = suite["suite_name"]
    return (f"<h3 id='{_anchor('suite-', name)}'>Suite {_e(name)}</h3>"
            f"<table class='results'>{_RESULT_COLUMNS}<thead>{head}</thead><tbody>{rows}</tbody>"
            f"</table>")


_RESULT_COLUMNS = "<colgroup>" + "".join(
    f"<col style='width:{w}%'>" for w in (20, 15, 14, 6, 7, 8, 8, 6, 16)) + "</colgroup>"


def _expectation_row(result: dict) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("column", "batch_id")}
    observed = result.get("result") or {}
    percent = observed.get("unexpected_percent")
    notes = (config.get("meta") or {}).get("notes")
    kind = f"<code>{_wbr(config['type'])}</code>" + (
        f"<div class='note'>{_e(notes)}</div>" if notes else "")
    cells = [
        kind, _wbr(config["kwargs"].get("column", "")),
        f"<code>{_e(json.dumps(kwargs, default=str))}</code>", _mark(result["success"]),
        _num(observed.get("element_count")), _num(observed.get("unexpected_count")),
        _num(None if percent is None else f"{percent:.4g}"), _num(observed.get("missing_count")),
        f"<td class='vals'>{_e(_detail(result))}</td>",
    ]
    css = "" if result["success"] else " class='failed'"
    return (f"<tr{css}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells)
            + "</tr>")


def _detail(result: dict) -> str:
    info = result.get("exception_info") or {}
    if info.get("raised_exception"):
        return f"error: {info.get('exception_message')}"
    observed = result.get("result") or {}
    if "observed_value" in observed:
        return f"observed {_short(observed['observed_value'])}"
    values = observed.get("partial_unexpected_list") or []
    return ", ".join(_short(v) for v in values)


def _short(value) -> str:
    """6 significant digits, still a float literal: 1161.1807861328125 -> 1161.18, 99.0 -> 99.0."""
    if isinstance(value, float):
        return repr(float(f"{value:.6g}"))
    return str(value)


def _num(value) -> str:
    return f"<td class='num'>{'' if value is None else _e(value)}</td>"


# --- QC flags --------------------------------------------------------------------------------
def _flag_head(first: str, extra: str = "") -> str:
    flags = "".join(f"<th class='num'><span class='chip f{f}'></span>{f} "
                    f"{_e(FLAG_NAMES[f])}</th>" for f in FLAGS)
    return f"<tr><th>{_e(first)}</th>{flags}<th class='num'>total</th>{extra}</tr>"


def _cell_attrs(var: str, test: str) -> str:
    return f"data-var={_q(var)} data-test={_q(test)}"


def _flag_cells(counts: dict, attrs: str) -> str:
    cells = []
    for flag in FLAGS:
        n = int(counts.get(flag, 0) or 0)
        hit = f" hit{flag}" if flag in ("3", "4") and n else ""
        cells.append(f"<td class='num{hit}' {attrs} data-flag='{flag}'>{_count(n)}</td>")
    total = sum(int(counts.get(f, 0) or 0) for f in FLAGS)
    return "".join(cells) + f"<td class='num' {attrs} data-flag='total'>{_count(total)}</td>"


def _qc_section(qc: dict) -> str:
    flags = qc.get("qc") or {}
    if not flags:
        return ("<p class='note'>No QC flags were computed in this run (no QC tests configured "
                "for its variables).</p>")
    daily, hists = qc.get("qc_daily") or {}, qc.get("hist") or {}
    series, samples = qc.get("series") or {}, qc.get("samples") or {}
    return _qc_overview(flags) + "".join(
        _qc_variable(var, tests, daily.get(var), hists.get(var), series.get(var),
                     samples.get(var)) for var, tests in flags.items())


def _qc_overview(flags: dict) -> str:
    rows = "".join(
        f"<tr><td><a href='#{_anchor('qc-', var)}'>{_e(var)}</a></td>"
        f"{_flag_cells(tests.get('aggregate', {}), _cell_attrs(var, 'overview'))}"
        f"<td>{plots.flag_bar_svg(tests.get('aggregate', {}))}</td></tr>"
        for var, tests in flags.items())
    return (f"<h3>Final flag per variable (aggregate of all tests)</h3><table><thead>"
            f"{_flag_head('variable', '<th>share</th>')}</thead><tbody>{rows}</tbody>"
            f"</table>")


def _q(value) -> str:
    return f"'{_e(value)}'"


def _qc_variable(var: str, tests: dict, daily: dict | None, hist: dict | None,
                 series: dict | None = None, samples: list | None = None) -> str:
    # the aggregate (worst flag of every test) closes the table as its total row
    order = [t for t in tests if t != "aggregate"] + (["aggregate"] if "aggregate" in tests
                                                       else [])
    rows = "".join(
        f"<tr{' class=total' if test == 'aggregate' else ''}><td>{_e(test)}</td>"
        f"{_flag_cells(tests[test], _cell_attrs(var, test))}</tr>"
        for test in order)
    plot_series = plots.series_svg(series, title=var) if series else ""
    plot_time = plots.flag_fraction_svg(daily, title=var) if daily else ""
    plot_hist = plots.histogram_svg(hist, title=var) if hist else ""
    return (f"<div class='var' id='{_anchor('qc-', var)}'><h3>{_e(var)}</h3>"
            f"<table><thead>{_flag_head('test')}</thead><tbody>{rows}</tbody></table>"
            f"{plot_series}{plot_time}{plot_hist}{_samples_table(var, samples or [])}</div>")


_SAMPLE_COLUMNS = (("time", "time (UTC)"), ("value", "value"), ("flag", "flag"),
                   ("tests", "flagged by"), ("platform", "platform"), ("profile", "profile"),
                   ("depth", "depth"), ("latitude", "lat"), ("longitude", "lon"),
                   ("quarantined", "quarantined as"))


def _samples_table(var: str, samples: list[dict]) -> str:
    """The first flagged rows of a variable (by time), with every test that flagged them."""
    if not samples:
        return ""
    shown = [(k, label) for k, label in _SAMPLE_COLUMNS
             if k in ("time", "value", "flag", "tests") or any(r.get(k) is not None
                                                                for r in samples)]
    head = "".join(f"<th>{_e(label)}</th>" for _, label in shown)
    rows = "".join(
        f"<tr data-sample={_q(var)}>" + "".join(_sample_cell(k, row.get(k)) for k, _ in shown)
        + "</tr>" for row in samples)
    return (f"<details class='rows'><summary>First {len(samples)} flagged rows (suspect or "
            f"fail), by time</summary><table><thead><tr>{head}</tr></thead><tbody>{rows}"
            f"</tbody></table></details>")


def _sample_cell(key: str, value) -> str:
    if key == "flag":
        return (f"<td><span class='chip f{int(value)}'></span>{int(value)} "
                f"{_e(FLAG_NAMES[str(int(value))])}</td>")
    if key == "tests":
        text = ", ".join(f"{test} {flag}" for test, flag in sorted((value or {}).items()))
        return f"<td><code>{_wbr(text)}</code></td>"
    if key == "quarantined":
        return f"<td><code>{_e(value)}</code></td>" if value else "<td></td>"
    if value is None:
        return "<td></td>"
    if key in ("value", "depth", "latitude", "longitude"):
        return f"<td class='num'>{_e(_short(value))}</td>"
    if key == "time":  # ISO 8601 in UTC: shown without the zone letter and zero microseconds
        value = str(value).replace("T", " ").rstrip("Z").removesuffix(".000000")
    return f"<td>{_e(value)}</td>"


# --- quarantine ------------------------------------------------------------------------------
def _quarantine_section(quarantine: dict | None, counts: dict,
                        sample: list | None = None) -> str:
    by_reason = (quarantine or {}).get("by_reason") or {}
    by_source = (quarantine or {}).get("by_source") or {}
    total = sum(int(n) for n in by_reason.values())
    if not total and not counts.get("rows_quarantined"):
        return "<p>No rows were quarantined.</p>"
    rows_in = counts.get("rows_in")
    reason_rows = "".join(
        f"<tr><td><code>{_e(reason)}</code></td><td class='num' data-reason={_q(reason)}>"
        f"{_count(n)}</td><td class='num'>{_share(n, rows_in)}</td></tr>"
        for reason, n in sorted(by_reason.items(), key=lambda kv: (-int(kv[1]), kv[0])))
    parts = [(f"<h3>By reason</h3><table><thead><tr><th>reason</th><th class='num'>rows</th>"
              f"<th class='num'>% of rows in</th></tr></thead><tbody>{reason_rows}"
              f"<tr class='total'><td>total</td><td class='num' data-reason='total'>"
              f"{_count(total)}</td><td class='num'>{_share(total, rows_in)}</td></tr>"
              f"</tbody></table>")]
    expected = counts.get("rows_quarantined")
    if expected is not None and int(expected) != total:
        parts.append(f"<p class='warn'>The run counted {_count(expected)} quarantined rows but "
                     f"the reasons add up to {_count(total)}.</p>")
    if by_source:
        parts.append(_quarantine_by_source(by_source, sorted(by_reason)))
    if sample:
        parts.append(_quarantine_sample(sample))
    return "".join(parts)


#: characters of a quarantined record's raw content shown in the report
RAW_CHARS = 400


def _quarantine_sample(records: list[dict]) -> str:
    """The first quarantined records (by source file and position) with their content."""
    rows = "".join(
        f"<tr data-quarantined={_q(r.get('reason'))}><td><code>{_e(r.get('reason'))}</code></td>"
        f"<td title={_q(r.get('source_file') or '')}>"
        f"{_e(Path(r.get('source_file') or '').name)}</td>"
        f"<td class='num'>{_count(r.get('position'))}</td>"
        f"<td>{_e(r.get('detail') or '')}</td><td class='vals'>{_e(_clip(r.get('raw')))}</td></tr>"
        for r in records)
    return (f"<h3>First {len(records)} quarantined records</h3><table><thead><tr><th>reason</th>"
            f"<th>source file</th><th class='num'>position</th><th>detail</th><th>content</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _clip(raw) -> str:
    text = "" if raw is None else str(raw)
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + " …"


def _share(n, rows_in) -> str:
    return f"{int(n) / int(rows_in):.3%}" if rows_in else ""


def _quarantine_by_source(by_source: dict, reasons: list[str]) -> str:
    reasons = reasons + sorted({r for v in by_source.values() for r in v} - set(reasons))
    head = "".join(f"<th class='num'><code>{_e(r)}</code></th>" for r in reasons)
    rows = "".join(
        f"<tr><td title={_q(uri)}>{_e(Path(uri).name or uri)}</td>"
        + "".join(f"<td class='num' data-source={_q(uri)} data-reason={_q(r)}>"
                  f"{_count(per.get(r, 0))}</td>" for r in reasons)
        + f"<td class='num'>{_count(sum(int(n) for n in per.values()))}</td></tr>"
        for uri, per in sorted(by_source.items()))
    return (f"<h3>By source file</h3><table><thead><tr><th>source file</th>{head}"
            f"<th class='num'>total</th></tr></thead><tbody>{rows}</tbody></table>")
