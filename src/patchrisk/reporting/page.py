"""A plain, printable HTML page around sections of tables and charts."""

from __future__ import annotations

from html import escape

import pandas as pd

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#111}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f4f6}.passed{color:#15803d;font-weight:bold}.failed{color:#b91c1c;font-weight:bold}
.muted{color:#6b7280;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:16px}
"""


def table(df: pd.DataFrame, max_rows: int = 50, float_format: str = "{:.3f}") -> str:
    shown = df.head(max_rows)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for v in row:
            text = float_format.format(v) if isinstance(v, float) else str(v)
            css = f' class="{text}"' if text in {"passed", "failed"} else ""
            cells.append(f"<td{css}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="muted">{len(df) - max_rows} more rows not shown.</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def page(title: str, sections: list[tuple[str, str]], subtitle: str = "") -> str:
    body = "".join(f'<section><h2>{escape(h)}</h2>{html}</section>' for h, html in sections)
    sub = f'<p class="muted">{escape(subtitle)}</p>' if subtitle else ""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{sub}{body}</body></html>")
