"""A plain, printable HTML page around sections of tables and charts."""

from __future__ import annotations

from html import escape

import pandas as pd

from patchrisk.reporting.humanize import cell
from patchrisk.reporting.svg import status_icon, status_kind

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#111}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0;max-width:100%}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
td.num{text-align:right;white-space:nowrap}td.long{max-width:32em}
th{background:#f3f4f6}.passed{color:#15803d;font-weight:bold}.failed{color:#b91c1c;font-weight:bold}
.muted{color:#6b7280;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:16px}svg.chart{max-width:100%;height:auto}
"""
MAX_CELL_CHARS = 130  # longer text is cut, with the whole of it in the cell's tooltip


def _cell(column: str, value) -> str:
    from numbers import Number

    text = cell(column, value)
    kind = status_kind(text)
    if kind in {"passed", "failed"}:
        return f'<td class="{kind}">{status_icon(text)}{escape(text)}</td>'
    if isinstance(value, Number) and not isinstance(value, bool) and text != "missing":
        return f'<td class="num">{escape(text)}</td>'
    if len(text) > MAX_CELL_CHARS:
        return f'<td class="long" title="{escape(text)}">{escape(text[:MAX_CELL_CHARS - 1].rstrip())}…</td>'
    css = ' class="long"' if len(text) > 30 else ""
    return f"<td{css}>{escape(text)}</td>"


def table(df: pd.DataFrame, max_rows: int = 50) -> str:
    """An HTML table with numbers for people (see humanize) and long text wrapped or cut."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{escape(str(c).replace('_', ' '))}</th>" for c in shown.columns)
    body = ["<tr>" + "".join(_cell(str(c), v) for c, v in zip(shown.columns, row)) + "</tr>"
            for row in shown.itertuples(index=False)]
    more = f'<p class="muted">{len(df) - max_rows} more rows not shown.</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def page(title: str, sections: list[tuple[str, str]], subtitle: str = "") -> str:
    body = "".join(f'<section><h2>{escape(h)}</h2>{html}</section>' for h, html in sections)
    sub = f'<p class="muted">{escape(subtitle)}</p>' if subtitle else ""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{sub}{body}</body></html>")
