"""Small server-drawn SVG charts for the admin: no JavaScript, no CDN, works offline.

Each function takes plain numbers and returns escaped SVG markup (``SafeString``), so a
template can drop it in as is. Sizes are in px; colours follow the order of the series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#b3261e", "#1f5fa8", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f", "#5d4037"]
_W, _H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 150, 34, 34


def _nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 2.5 or 5 × 10^n)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * scale * (1 + 1e-9):
            return step * scale
    return 10 * scale


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _frame(title: str, top: float) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
             f'width="{_W}" height="{_H}" role="img" aria-label="{escape(title)}" '
             'class="xo-chart" font-family="sans-serif" font-size="11">',
             f"<title>{escape(title)}</title>",
             f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold" fill="#333">'
             f"{escape(title)}</text>"]
    plot_h = _H - _TOP - _BOTTOM
    for i in range(5):
        y = _TOP + plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{_fmt(top * (4 - i) / 4)}</text>")
    return parts


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        y = _TOP + 8 + i * 16
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{_W - _RIGHT + 12}" y="{y - 8}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{_W - _RIGHT + 27}" y="{y + 1}">'
                     f"{escape(name)}</text>")
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    every = max(1, -(-len(labels) // 8))  # at most 8 labels
    return [f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" fill="#555">'
            f"{escape(label)}</text>"
            for i, (label, x) in enumerate(zip(labels, xs, strict=True)) if i % every == 0]


def line_chart(title: str, labels: Sequence[str],
               series: dict[str, Sequence[float | None]]) -> SafeString:
    """One line per series over the labels (``None`` leaves a gap), with a legend."""
    values = [v for points in series.values() for v in points if v is not None]
    top = _nice_max(max(values, default=0.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = len(labels)
    xs = [_LEFT + (plot_w * (i + 0.5) / n if n else 0) for i in range(n)]
    parts = _frame(title, top)
    for s, (name, points) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        coords = [(x, _TOP + plot_h * (1 - v / top)) for x, v in zip(xs, points, strict=True)
                  if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        for (x, y), v in zip(coords, [v for v in points if v is not None], strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                         f"<title>{escape(name)}: {v:.3f}</title></circle>")
    parts += _x_labels(labels, xs) + _legend(list(series)) + ["</svg>"]
    return mark_safe("".join(parts))


def stacked_bar_chart(title: str, labels: Sequence[str],
                      series: dict[str, Sequence[float]]) -> SafeString:
    """One bar per label, stacked by series (e.g. interactions per day by type)."""
    totals = [sum(points[i] for points in series.values()) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = len(labels)
    slot = plot_w / n if n else plot_w
    xs = [_LEFT + slot * (i + 0.5) for i in range(n)]
    parts = _frame(title, top)
    for i, label in enumerate(labels):
        base = 0.0
        for s, (name, points) in enumerate(series.items()):
            value = points[i]
            if not value:
                continue
            height = plot_h * value / top
            y = _TOP + plot_h * (1 - (base + value) / top)
            parts.append(f'<rect x="{xs[i] - slot * 0.4:.1f}" y="{y:.1f}" '
                         f'width="{slot * 0.8:.1f}" height="{height:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} · '
                         f"{escape(name)}: {value:,.0f}</title></rect>")
            base += value
    parts += _x_labels(labels, xs) + _legend(list(series)) + ["</svg>"]
    return mark_safe("".join(parts))
