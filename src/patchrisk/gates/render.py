"""Human renderings of a gate report: Markdown (KFP's Markdown viewer, CI logs, MLflow) and one
self-contained HTML page with inline SVG charts."""

from __future__ import annotations

import html

from patchrisk.gates.report import FAILED, PASSED, Check, GateReport
from patchrisk.reporting.humanize import number
from patchrisk.reporting.svg import status_icon

# Markdown only (CI logs, KFP's Markdown viewer); the HTML page draws its marks as inline SVG.
ICON = {PASSED: "✅", FAILED: "❌", "insufficient_data": "⚠️", "not_applicable": "➖"}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _check_row(c: Check) -> list[str]:
    limit = f"{c.comparator} {_num(c.threshold)}" if c.comparator else ""
    return [c.name, _num(c.value), limit, f"{ICON.get(c.verdict, '')} {c.verdict}", c.detail]


def _html_check_cells(c: Check) -> list[str]:
    """value, limit, verdict (with its SVG mark) and detail as escaped HTML cells: numbers for people."""
    limit = f"{c.comparator} {number(c.threshold, digits=3)}" if c.comparator else ""
    verdict = f"<td class='{c.verdict}'>{status_icon(c.verdict)}{html.escape(c.verdict)}</td>"
    return [f"<td>{html.escape(c.name)}</td>", f"<td class='num'>{html.escape(number(c.value, digits=3))}</td>",
            f"<td>{html.escape(limit)}</td>", verdict, f"<td>{html.escape(c.detail)}</td>"]


def _headline(report: GateReport) -> str:
    verdict = "PASSED" if report.passed else "REJECTED"
    m = report.model
    return f"Validation gates: {verdict} - {m['name']} (version {m['version']})"


def render_markdown(report: GateReport) -> str:
    m, h, p = report.model, report.holdout, report.policy
    lines = [
        f"# {_headline(report)}",
        "",
        f"**{report.reason}**",
        "",
        f"Spec `{m['spec']}` v{m['spec_version']} (fingerprint `{m['spec_fingerprint']}`); holdout "
        f"{h['rows']} rows, {h['positives']} positives; threshold {h['decision_threshold']:g}; "
        f"policy `{p['source']}` env `{p['env']}` (digest `{p['digest']}`).",
        "",
        "| gate | verdict | reason |",
        "|---|---|---|",
    ]
    lines += [f"| {g.name} | {ICON[g.verdict]} {g.verdict} | {g.reason} |" for g in report.gates]
    for g in report.gates:
        lines += [
            "",
            f"## {ICON[g.verdict]} {g.name}",
            "",
            g.reason,
            "",
            "| check | value | limit | verdict | detail |",
            "|---|---|---|---|---|",
        ]
        lines += [
            "| " + " | ".join(cell.replace("|", "/") for cell in _check_row(c)) + " |" for c in g.checks
        ]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em;
text-align:left;vertical-align:top}.passed{color:#176f2c}.failed{color:#b00020;font-weight:bold}
.insufficient_data{color:#a15c00}.not_applicable{color:#777}section{margin-top:1.5em}svg{max-width:100%}
td{overflow-wrap:anywhere}td.num{text-align:right;white-space:nowrap}"""


def render_html(report: GateReport) -> str:
    from patchrisk.gates.charts import charts_for

    esc = html.escape
    overall = PASSED if report.passed else FAILED
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(_headline(report))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(_headline(report))}</h1>",
        f"<p class='{overall}'>{esc(report.reason)}</p>",
        "<table><tr><th>gate</th><th>verdict</th><th>reason</th></tr>",
    ]
    parts += [
        f"<tr><td>{esc(g.name)}</td><td class='{g.verdict}'>{status_icon(g.verdict)}{g.verdict}</td>"
        f"<td>{esc(g.reason)}</td></tr>"
        for g in report.gates
    ]
    parts.append("</table>")
    for g in report.gates:
        parts.append(
            f"<section><h2 class='{g.verdict}'>{status_icon(g.verdict)}{esc(g.name)}</h2><p>{esc(g.reason)}</p>"
        )
        parts.extend(charts_for(g))
        parts.append(
            "<table><tr><th>check</th><th>value</th><th>limit</th><th>verdict</th><th>detail</th></tr>"
        )
        parts += ["<tr>" + "".join(_html_check_cells(c)) + "</tr>" for c in g.checks]
        parts.append("</table></section>")
    parts.append(
        f"<footer><small>{esc(report.schema)} - {esc(report.created_at)}</small></footer></body></html>"
    )
    return "\n".join(parts)
