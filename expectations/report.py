"""Validation report files: ``validation.json`` (machine) and ``validation.html`` (people).

The HTML page is self-contained (inline CSS, no JavaScript, no external resources) so that it
opens offline from a dataset folder or an archive. Both files are rendered from the GE results'
``to_json_dict()``, so they show exactly what the JSON records.
"""
from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from expectations.gate import GateDecision

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:0.9em}
th{background:#f0f0f0} .ok{color:#1a7f37} .bad{color:#b42318;font-weight:bold}
.num{text-align:right;font-variant-numeric:tabular-nums} code{font-size:0.85em}
"""


def write_report(results, gate: GateDecision, info: dict, directory: Path) -> tuple[Path, Path]:
    """Write ``validation.json`` and ``validation.html`` into ``directory``; return both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "info": info,
        "gate": gate.to_dict(),
        "results": [r.to_json_dict() for r in results],
    }
    json_path = directory / "validation.json"
    json_path.write_text(json.dumps(_finite(document), indent=2, default=str, allow_nan=False),
                         encoding="utf-8")
    html_path = directory / "validation.html"
    html_path.write_text(render_html(document), encoding="utf-8")
    return json_path, html_path


def _finite(value):
    """NaN/inf as null: strict JSON, readable by any consumer (GE may echo NaN values)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def render_html(document: dict) -> str:
    gate = document["gate"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Validation report {_e(document['info'].get('dataset', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Validation report</h1>",
        _info_table(document["info"]),
        _verdict(gate),
        _summary_table(document["results"]),
    ]
    parts += [_suite_section(suite) for suite in document["results"]]
    parts.append(f"<p><small>Generated {_e(dt.datetime.now(dt.timezone.utc).isoformat())}"
                 "</small></p></body></html>")
    return "\n".join(parts)


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _info_table(info: dict) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in info.items())
    return f"<table>{rows}</table>"


def _verdict(gate: dict) -> str:
    if gate["passed"]:
        return "<h2 class='ok'>Gate: PASSED</h2>"
    items = "".join(f"<li>{_e(f)}</li>" for f in gate["failures"])
    return f"<h2 class='bad'>Gate: FAILED</h2><ul>{items}</ul>"


def _summary_table(results: list[dict]) -> str:
    head = "<tr><th>suite</th><th>success</th><th>evaluated</th><th>failed</th></tr>"
    rows = "".join(
        f"<tr><td><a href='#{_e(r['suite_name'])}'>{_e(r['suite_name'])}</a></td>"
        f"<td>{_mark(r['success'])}</td>"
        f"<td class='num'>{r['statistics'].get('evaluated_expectations', '')}</td>"
        f"<td class='num'>{r['statistics'].get('unsuccessful_expectations', '')}</td></tr>"
        for r in results)
    return f"<h2>Summary</h2><table>{head}{rows}</table>"


def _mark(success) -> str:
    return "<span class='ok'>pass</span>" if success else "<span class='bad'>FAIL</span>"


def _suite_section(suite: dict) -> str:
    head = ("<tr><th>expectation</th><th>column</th><th>kwargs</th><th>success</th>"
            "<th>elements</th><th>unexpected</th><th>unexpected %</th><th>missing</th>"
            "<th>observed / partial unexpected values</th></tr>")
    rows = "".join(_expectation_row(r) for r in suite["results"])
    return (f"<h2 id='{_e(suite['suite_name'])}'>Suite {_e(suite['suite_name'])}</h2>"
            f"<table>{head}{rows}</table>")


def _expectation_row(result: dict) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("column", "batch_id")}
    observed = result.get("result") or {}
    percent = observed.get("unexpected_percent")
    info = result.get("exception_info") or {}
    detail = (info.get("exception_message") if info.get("raised_exception")
              else observed.get("observed_value", observed.get("partial_unexpected_list", "")))
    cells = [
        f"<code>{_e(config['type'])}</code>", _e(config["kwargs"].get("column", "")),
        f"<code>{_e(json.dumps(kwargs, default=str))}</code>", _mark(result["success"]),
        _num(observed.get("element_count")), _num(observed.get("unexpected_count")),
        _num(None if percent is None else f"{percent:.4g}"), _num(observed.get("missing_count")),
        _e(detail),
    ]
    return "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>"


def _num(value) -> str:
    return f"<td class='num'>{'' if value is None else _e(value)}</td>"
