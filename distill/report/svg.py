"""Hand-written SVG charts for the HTML report: no plotting library, no network, no fonts.

Two charts: accuracy against latency with the Pareto front, and per-class IoU bars. Each is a
string of inline SVG with labelled axes, units and a legend, sized in CSS pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# One colour per model (Okabe-Ito order), distinct from nothing else on the page.
SERIES = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#6a3d9a", "#444444", "#b15928", "#1b9e77"]
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'


def series_colour(i: int) -> str:
    return SERIES[i % len(SERIES)]


@dataclass(frozen=True)
class Point:
    label: str
    x: float  # median latency, ms
    y: float  # mIoU, %
    x_high: float | None = None  # p90 latency, drawn as a whisker
    y_low: float | None = None  # a group of seeds' lowest and highest mIoU, drawn as a vertical bar
    y_high: float | None = None


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt_tick(value: float) -> str:
    return f"{value:g}"


def pareto_front(points: list[Point]) -> list[int]:
    """Indices of points no other point beats on both axes (faster and at least as accurate, or vice versa)."""
    front = []
    for i, p in enumerate(points):
        dominated = any((q.x <= p.x and q.y >= p.y) and (q.x < p.x or q.y > p.y) for q in points)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i].x)


def text(x: float, y: float, body: str, size: int = 12, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT} {extra}>{escape(body)}</text>'


def scatter_svg(points: list[Point], x_label: str, y_label: str, width: int = 560, height: int = 400) -> str:
    """Accuracy vs latency; the Pareto front is joined by a dashed step line and drawn filled. With
    a group of seeds among the points the figure grows a legend line for its mIoU range."""
    seeds = any(p.y_low is not None for p in points)
    height, (left, right, top, bottom) = height + 16 * seeds, (64, 24, 20, 78 + 16 * seeds)
    xs = [p.x for p in points] + [p.x_high for p in points if p.x_high is not None]
    ys = [p.y for p in points] + [v for p in points for v in (p.y_low, p.y_high) if v is not None]
    x_ticks = nice_ticks(0.0, max(xs) * 1.08)
    y_ticks = nice_ticks(max(0.0, min(ys) - 0.1 * (max(ys) - min(ys) + 1)), max(ys) + 0.1 * (max(ys) - min(ys) + 1))
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(y_label)} against {escape(x_label)}">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#999"/>']
    parts += axes(x_ticks, y_ticks, sx, sy, left, top, plot_w, plot_h)
    parts.append(text(left + plot_w / 2, top + plot_h + 38, x_label, 13, "middle"))
    parts.append(text(16, top + plot_h / 2, y_label, 13, "middle", f'transform="rotate(-90 16 {top + plot_h / 2:.1f})"'))
    front = pareto_front(points)
    if len(front) > 1:
        path = f"M{sx(points[front[0]].x):.1f},{sy(points[front[0]].y):.1f}"
        for a, b in zip(front, front[1:]):
            path += f" H{sx(points[b].x):.1f} V{sy(points[b].y):.1f}"
        parts.append(f'<path d="{path}" fill="none" stroke="#333" stroke-width="1.5" stroke-dasharray="5 4"/>')
    label_ys = label_offsets([sy(p.y) - 8 for p in points])
    for i, p in enumerate(points):
        colour, cx, cy = series_colour(i), sx(p.x), sy(p.y)
        parts += whiskers(p, colour, sx, sy)
        fill = colour if i in front else "#fff"
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{fill}" stroke="{colour}" stroke-width="2.5"><title>'
                     f'{escape(p.label)}: {p.y:.2f} % at {p.x:.2f} ms</title></circle>')
        parts.append(text(cx + 9, label_ys[i], p.label, 12, "start", f'fill="{colour}"'))
    parts += scatter_legend(left, height - (30 if seeds else 14), any(p.x_high is not None for p in points), seeds)
    parts.append("</svg>")
    return "\n".join(parts)


def whiskers(p: Point, colour: str, sx, sy) -> list[str]:
    """A point's p90 latency (to the right) and, for a group of seeds, its mIoU min–max (up and down)."""
    lines = []
    if p.x_high is not None:
        lines.append((sx(p.x), sy(p.y), sx(p.x_high), sy(p.y)))
    if p.y_low is not None and p.y_high is not None:
        lines.append((sx(p.x), sy(p.y_low), sx(p.x), sy(p.y_high)))
    return [f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="2" opacity="0.6"/>'
            for x1, y1, x2, y2 in lines]


def axes(x_ticks, y_ticks, sx, sy, left: float, top: float, plot_w: float, plot_h: float) -> list[str]:
    parts = []
    for v in x_ticks:
        x = sx(v)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e4e4e4"/>')
        parts.append(text(x, top + plot_h + 17, fmt_tick(v), 11, "middle", 'fill="#444"'))
    for v in y_ticks:
        y = sy(v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        parts.append(text(left - 6, y + 4, fmt_tick(v), 11, "end", 'fill="#444"'))
    return parts


def scatter_legend(x: float, y: float, whiskers: bool, seeds: bool = False) -> list[str]:
    parts = [
        f'<path d="M{x},{y - 4} h30" stroke="#333" stroke-width="1.5" stroke-dasharray="5 4"/>',
        f'<circle cx="{x + 15}" cy="{y - 4}" r="5" fill="#555" stroke="#555" stroke-width="2"/>',
        text(x + 36, y, "Pareto front", 11),
        f'<circle cx="{x + 126}" cy="{y - 4}" r="5" fill="#fff" stroke="#555" stroke-width="2"/>',
        text(x + 136, y, "dominated", 11),
    ]
    if whiskers:
        parts += [f'<path d="M{x + 206},{y - 4} h24" stroke="#555" stroke-width="2" opacity="0.6"/>',
                  text(x + 236, y, "latency median to p90", 11)]
    if seeds:  # on a line of its own: the first is full
        parts += [f'<path d="M{x + 15},{y + 5} v14" stroke="#555" stroke-width="2" opacity="0.6"/>',
                  text(x + 36, y + 16, "mIoU min–max over seeds (point: their mean)", 11)]
    return parts


def label_offsets(ys: list[float], gap: float = 14.0) -> list[float]:
    """Vertical positions for point labels, pushed apart so no two are closer than `gap`."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed: list[float] = [0.0] * len(ys)
    last = -1e9
    for i in order:
        placed[i] = max(ys[i], last + gap)
        last = placed[i]
    return placed


def bars_svg(classes: list[str], series: list[tuple[str, list[float | None]]], unit: str = "IoU %",
             width: int = 560) -> str:
    """Horizontal bars: one group per class, one bar per model (0-100 scale); None is drawn as n/a."""
    left, right, top, bar, gap = 110, 48, 34, 11, 10
    group = bar * len(series) + gap
    plot_w, plot_h = width - left - right, group * len(classes)
    height = top + plot_h + 40

    def sx(v: float) -> float:
        return left + v / 100.0 * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="per-class {escape(unit)}">']
    x = left
    for i, (name, _) in enumerate(series):  # legend along the top
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{series_colour(i)}"/>')
        parts.append(text(x + 16, 18, name, 11))
        x += 16 + 7 * len(name) + 18  # about 7 px per character at 11 px
    for v in range(0, 101, 20):
        x = sx(v)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e4e4e4"/>')
        parts.append(text(x, top + plot_h + 15, str(v), 11, "middle", 'fill="#444"'))
    parts.append(text(left + plot_w / 2, top + plot_h + 33, unit, 12, "middle"))
    for c, cls in enumerate(classes):
        y0 = top + c * group + gap / 2
        parts.append(text(left - 8, y0 + bar * len(series) / 2 + 4, cls, 12, "end"))
        for i, (name, values) in enumerate(series):
            value, y = values[c], y0 + i * bar
            if value is None:
                parts.append(text(left + 4, y + bar - 2, "n/a", 9, "start", 'fill="#888"'))
                continue
            parts.append(f'<rect x="{left}" y="{y:.1f}" width="{max(0.5, sx(value) - left):.1f}" height="{bar - 1}" '
                         f'fill="{series_colour(i)}"><title>{escape(name)}, {escape(cls)}: {value:.2f}</title></rect>')
            parts.append(text(sx(value) + 3, y + bar - 2, f"{value:.1f}", 9, "start", 'fill="#444"'))
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append("</svg>")
    return "\n".join(parts)
