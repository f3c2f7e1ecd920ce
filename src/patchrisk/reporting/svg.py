"""Small inline-SVG charts (bars, lines) so reports render anywhere, with no JavaScript."""

from __future__ import annotations

from html import escape

from patchrisk.reporting.humanize import number

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]


def bar_chart(labels: list[str], values: list[float], title: str, width: int = 640, bar_height: int = 22,
              value_format: str = "{:.2f}", color: str = PALETTE[0]) -> str:
    """Horizontal bars, largest first as given; labels on the left, values at the bar's end."""
    label_w, pad = 180, 8
    height = pad * 2 + 24 + bar_height * len(values)
    top = max(max(values, default=0), 1e-12)
    rows = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = pad + 24 + i * bar_height
        w = max((width - label_w - 80) * value / top, 1)
        rows.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" font-size="12">'
            f"{escape(str(label))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" fill="{color}" rx="2">'
            f"<title>{escape(str(label))}: {value_format.format(value)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}" font-size="11">'
            f"{value_format.format(value)}</text>")
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<text x="{pad}" y="{pad + 12}" font-size="14" font-weight="bold">{escape(title)}</text>'
            + "".join(rows) + "</svg>")


def line_chart(series: dict[str, list[float]], x_labels: list[str], title: str, width: int = 640,
               height: int = 240, threshold: float | None = None) -> str:
    """One line per series over shared x positions; an optional dashed threshold line."""
    pad_l, pad_r, pad_t, pad_b = 48, 120, 28, 36
    all_values = [v for vals in series.values() for v in vals if v == v]
    if threshold is not None:
        all_values.append(threshold)
    top = max(max(all_values, default=1.0), 1e-12) * 1.1
    n = max(len(x_labels), 2)
    px = lambda i: pad_l + (width - pad_l - pad_r) * i / (n - 1)
    py = lambda v: pad_t + (height - pad_t - pad_b) * (1 - v / top)
    parts = [f'<line x1="{pad_l}" y1="{py(0):.1f}" x2="{width - pad_r}" y2="{py(0):.1f}" stroke="#999"/>',
             f'<text x="{pad_l - 6}" y="{py(top / 1.1):.1f}" text-anchor="end" font-size="10">{number(top / 1.1)}</text>',
             f'<text x="{pad_l - 6}" y="{py(0):.1f}" text-anchor="end" font-size="10">0</text>']
    for i, label in enumerate(x_labels):
        if len(x_labels) <= 12 or i % max(len(x_labels) // 8, 1) == 0:
            parts.append(f'<text x="{px(i):.1f}" y="{height - pad_b + 14}" text-anchor="middle" '
                         f'font-size="10">{escape(str(label))}</text>')
    if threshold is not None:
        parts.append(f'<line x1="{pad_l}" y1="{py(threshold):.1f}" x2="{width - pad_r}" y2="{py(threshold):.1f}" '
                     f'stroke="#dc2626" stroke-dasharray="4 3"><title>threshold {number(threshold)}</title></line>')
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values) if v == v)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}">'
                     f"<title>{escape(name)}</title></polyline>")
        parts.append(f'<text x="{width - pad_r + 6}" y="{pad_t + 14 * k + 10}" font-size="11" fill="{color}">'
                     f"{escape(name)}</text>")
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<text x="{pad_l}" y="16" font-size="14" font-weight="bold">{escape(title)}</text>'
            + "".join(parts) + "</svg>")



def _frame(title: str, width: int, height: int, title_x: int, parts: list[str]) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<text x="{title_x}" y="16" font-size="14" font-weight="bold">{escape(title)}</text>'
            + "".join(parts) + "</svg>")


def _legend(names: list[str], x: int, y: int, step: int = 14) -> list[str]:
    return [f'<text x="{x}" y="{y + step * k}" font-size="11" fill="{PALETTE[k % len(PALETTE)]}">{escape(name)}</text>'
            for k, name in enumerate(names)]


def grouped_bar_chart(groups: list[str], series: dict[str, list[float | None]], title: str, y_max: float = 1.0,
                      width: int = 640, height: int = 240) -> str:
    """Vertical bars, one cluster per group and one bar per series; a missing value is marked "n/a"
    rather than drawn as zero, so an unmeasured group never reads as a perfect or a failing one."""
    pad_l, pad_r, pad_t, pad_b = 40, 150, 28, 36
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    base = pad_t + plot_h
    slot = plot_w / max(len(groups), 1)
    bar_w = slot * 0.8 / max(len(series), 1)
    parts = [f'<line x1="{pad_l}" y1="{base}" x2="{pad_l + plot_w}" y2="{base}" stroke="#999"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end" font-size="10">{number(y_max)}</text>',
             f'<text x="{pad_l - 6}" y="{base}" text-anchor="end" font-size="10">0</text>']
    for g, group in enumerate(groups):
        x0 = pad_l + slot * g + slot * 0.1
        parts.append(f'<text x="{pad_l + slot * (g + 0.5):.1f}" y="{base + 14}" text-anchor="middle" '
                     f'font-size="10">{escape(str(group))}</text>')
        for k, (name, values) in enumerate(series.items()):
            x, value = x0 + bar_w * k, values[g]
            if value is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - 4}" text-anchor="middle" font-size="9" '
                             f'fill="#6b7280">n/a<title>{escape(str(group))}, {escape(name)}: not measured</title></text>')
                continue
            h = plot_h * min(max(value / y_max, 0.0), 1.0)
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w * 0.92:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(str(group))}, {escape(name)}: '
                         f'{number(value)}</title></rect>')
    parts += _legend(list(series), width - pad_r + 8, pad_t + 10)
    return _frame(title, width, height, pad_l, parts)


def xy_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
             dashed: frozenset[str] = frozenset(), width: int = 640, height: int = 240) -> str:
    """Lines with markers over a numeric x axis (series may sample different x values); series
    named in ``dashed`` are drawn dashed grey, for limits rather than measurements."""
    pad_l, pad_r, pad_t, pad_b = 48, 170, 28, 40
    points = [p for pts in series.values() for p in pts]
    xs, ys = [p[0] for p in points] or [0.0, 1.0], [p[1] for p in points] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1e-12)
    y_lo, y_hi = min(ys), max(ys)
    margin = (y_hi - y_lo) * 0.1 or 0.05
    y_lo, y_hi = y_lo - margin, y_hi + margin
    px = lambda x: pad_l + (width - pad_l - pad_r) * (x - x_lo) / (x_hi - x_lo)
    py = lambda y: pad_t + (height - pad_t - pad_b) * (1 - (y - y_lo) / (y_hi - y_lo))
    base = height - pad_b
    parts = [f'<line x1="{pad_l}" y1="{base}" x2="{width - pad_r}" y2="{base}" stroke="#999"/>',
             f'<text x="{pad_l - 6}" y="{py(y_hi) + 8:.1f}" text-anchor="end" font-size="10">{number(y_hi)}</text>',
             f'<text x="{pad_l - 6}" y="{base}" text-anchor="end" font-size="10">{number(y_lo)}</text>',
             f'<text x="{pad_l}" y="{base + 14}" font-size="10">{number(x_lo)}</text>',
             f'<text x="{width - pad_r}" y="{base + 14}" text-anchor="end" font-size="10">{number(x_hi)}</text>',
             (f'<text x="{(pad_l + width - pad_r) / 2:.1f}" y="{base + 30}" text-anchor="middle" '
             f'font-size="11">{escape(x_label)}</text>'),
             (f'<text x="12" y="{(pad_t + base) / 2:.1f}" font-size="11" text-anchor="middle" '
             f'transform="rotate(-90 12 {(pad_t + base) / 2:.1f})">{escape(y_label)}</text>')]
    for k, (name, pts) in enumerate(series.items()):
        color = "#6b7280" if name in dashed else PALETTE[k % len(PALETTE)]
        style = ' stroke-dasharray="5 3"' if name in dashed else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{style} points="{path}">'
                     f"<title>{escape(name)}</title></polyline>")
        if name not in dashed:
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                      f"<title>{escape(name)} at {number(x)}: {number(y)}</title></circle>" for x, y in pts]
        parts.append(f'<text x="{width - pad_r + 8}" y="{pad_t + 10 + 14 * k}" font-size="11" fill="{color}">'
                     f"{escape(name)}</text>")
    return _frame(title, width, height, pad_l, parts)


# Verdict marks drawn as inline SVG: a font without ✓/✗ glyphs would show empty boxes instead.
_ICON_SHAPES = {
    "passed": ("#15803d", '<path d="M4 8.5l2.5 2.5L12 5.5" fill="none" stroke="#fff" stroke-width="2"/>'),
    "failed": ("#b91c1c", '<path d="M5 5l6 6M11 5l-6 6" fill="none" stroke="#fff" stroke-width="2"/>'),
    "warning": ("#a15c00", '<path d="M8 4v5M8 11v1.5" fill="none" stroke="#fff" stroke-width="2"/>'),
    "neutral": ("#9ca3af", '<path d="M4.5 8h7" fill="none" stroke="#fff" stroke-width="2"/>'),
}
_STATUS_KIND = {"passed": "passed", "pass": "passed", "failed": "failed", "fail": "failed",
                "insufficient_data": "warning", "hold": "warning", "warn": "warning",
                "not_applicable": "neutral", "skipped": "neutral"}


def status_kind(status: str) -> str | None:
    return _STATUS_KIND.get(str(status).strip().lower())


def status_icon(status: str) -> str:
    """A 16 px inline SVG mark for a verdict ('' for a word that is not one)."""
    kind = status_kind(status)
    if kind is None:
        return ""
    fill, mark = _ICON_SHAPES[kind]
    return (f'<svg class="icon" role="img" aria-label="{escape(kind)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="16" height="16" viewBox="0 0 16 16" style="vertical-align:-3px;margin-right:4px">'
            f'<circle cx="8" cy="8" r="8" fill="{fill}"/>{mark}</svg>')
