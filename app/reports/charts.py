"""Charts as server-rendered SVG: no script, no inline style (the CSP holds), colours from app.css.

`line_chart` draws one or more series over the same labels (days) with a `<title>` and `<desc>`
for assistive technology; the page puts the same numbers in a table beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36


@dataclass(frozen=True)
class Series:
    name: str
    values: list  # numbers or None (no value that day)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def line_chart(chart_id: str, title: str, labels: list[str], series: list[Series],
               fmt=lambda v: f"{v:g}") -> Markup:
    """An SVG line chart: one polyline and a dot per value of each series (classes `series-0`…)."""
    values = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(values) if values else 0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-desc">{escape(", ".join(s.name for s in series))}; '
             f'the table beside the chart has the numbers.</desc>']
    for k in range(5):  # gridlines and their values
        v = top * k / 4
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
        parts.append(f'<text class="chart-axis" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                     f'{escape(fmt(v))}</text>')
    every = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text class="chart-axis" x="{x(i):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
                         f'{escape(label[5:] if len(label) == 10 else label)}</text>')
    for k, s in enumerate(series):
        points = [(x(i), y(v)) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            parts.append(f'<polyline class="chart-line series-{k}" points="'
                         + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(f'<circle class="chart-dot series-{k}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3">'
                             f'<title>{escape(s.name)}, {escape(labels[i])}: {escape(fmt(v))}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
