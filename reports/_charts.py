"""Inline SVG charts written by hand: no plotting library, nothing fetched.

Each function takes plain data and returns one ``<svg>`` element as a string,
meant to sit inside an HTML page (pass ``standalone=True`` for a ``.svg``
file).  Every piece of text from the data is escaped; hovering a bar segment
or a point shows its details (``<title>``).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

STATUS_COLORS = {"converted": "#009E73", "failed": "#D55E00"}  # Okabe-Ito: colour-blind safe
_TEXT_ON = {"converted": "#fff", "failed": "#fff"}
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"'
_CHAR = 7.0  # average glyph width at 12 px, for layout
_LABEL_CHARS = 28


@dataclass(frozen=True)
class Point:
    label: str
    mb: float | None
    seconds: float
    status: str


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def status_bars(counts: dict[str, dict[str, int]], statuses=tuple(STATUS_COLORS), *, width: int = 620,
                title: str = "Status by architecture", standalone: bool = False) -> str:
    """Stacked horizontal bars: one per key of ``counts`` (architecture -> status -> count), with a legend."""
    label_w = min(_LABEL_CHARS, max((len(k) for k in counts), default=4)) * _CHAR + 12
    left, right, top, bar, gap = label_w, 40, 40, 20, 8
    height = top + max(1, len(counts)) * (bar + gap) + 34
    plot_w = width - left - right
    top_total = max((sum(c.values()) for c in counts.values()), default=0)
    ticks = _linear_ticks(top_total, 5, integer=True)
    scale = plot_w / ticks[-1]
    out = [_open(width, height, title, standalone), _legend(statuses, 0, 18, {s: _total(counts, s) for s in statuses})]
    out += _x_grid(ticks, lambda v: left + v * scale, top - 6, height - 34, str)
    for i, (name, by_status) in enumerate(counts.items()):
        y = top + i * (bar + gap)
        out.append(f'<text x="{left - 8}" y="{y + bar / 2 + 4}" text-anchor="end">{esc(_cut(name))}'
                   f'<title>{esc(name)}</title></text>')
        x = left
        for status in statuses:
            n = by_status.get(status, 0)
            if not n:
                continue
            w = n * scale
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{STATUS_COLORS.get(status, "#555")}">'
                       f'<title>{esc(name)}: {n} {esc(status)}</title></rect>')
            if w >= len(str(n)) * _CHAR + 6:
                out.append(f'<text x="{x + w / 2:.1f}" y="{y + bar / 2 + 4}" text-anchor="middle" '
                           f'fill="{_TEXT_ON.get(status, "#fff")}" pointer-events="none">{n}</text>')
            x += w
        out.append(f'<text x="{x + 5:.1f}" y="{y + bar / 2 + 4}" fill="#555">{sum(by_status.values())}</text>')
    if not counts:
        out.append(f'<text x="{left}" y="{top + 14}" fill="#777">no checkpoints</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" fill="#333">checkpoints</text>')
    return "\n".join(out + ["</svg>"])


def size_time_scatter(points, *, width: int = 620, height: int = 360, title: str = "Size vs conversion time",
                      standalone: bool = False) -> str:
    """Size in MB (x; log scale when it spans more than two decades) against seconds (y), coloured by status."""
    points = list(points)
    sized = [p for p in points if p.mb is not None and p.mb > 0]
    log_x = bool(sized) and max(p.mb for p in sized) / min(p.mb for p in sized) > 100
    shown = sized if log_x else [p for p in points if p.mb is not None]
    left, right, top, bottom = 62, 18, 40, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    x_ticks = _log_ticks([p.mb for p in shown]) if log_x else _linear_ticks(max((p.mb for p in shown), default=0), 6)
    y_ticks = _linear_ticks(max((p.seconds for p in shown), default=0), 5)
    if log_x:
        lo, hi = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
        fx = lambda v: left + (math.log10(v) - lo) / (hi - lo) * plot_w  # noqa: E731
    else:
        fx = lambda v: left + v / x_ticks[-1] * plot_w  # noqa: E731
    fy = lambda v: top + plot_h - v / y_ticks[-1] * plot_h  # noqa: E731
    statuses = [s for s in STATUS_COLORS if any(p.status == s for p in shown)] or list(STATUS_COLORS)
    out = [_open(width, height, title, standalone),
           _legend(statuses, left, 18, {s: sum(p.status == s for p in shown) for s in statuses})]
    frame = PlotFrame(left, top, plot_w, plot_h, height)
    out += frame.axes(x_ticks, fx, _tick_text, y_ticks, fy)
    order = {s: i for i, s in enumerate(("converted", "failed"))}  # failures drawn on top
    for p in sorted(shown, key=lambda p: order.get(p.status, -1)):
        out.append(f'<circle cx="{fx(p.mb):.1f}" cy="{fy(p.seconds):.1f}" r="5" fill="{STATUS_COLORS.get(p.status, "#555")}" '
                   f'fill-opacity="0.85" stroke="#fff" stroke-width="1"><title>{esc(p.label)}: {p.mb:.3g} MB, '
                   f'{p.seconds:.2f} s, {esc(p.status)}</title></circle>')
    if not shown:
        out.append(frame.empty("no checkpoint with a known size"))
    x_label = "size (MB, log scale)" if log_x else "size (MB)"
    missing = len(points) - len(shown)
    if missing:
        x_label += f" \u2014 {missing} without a size not shown"
    out += frame.labels(x_label, "conversion time (s)")
    return "\n".join(out + ["</svg>"])


@dataclass(frozen=True)
class PlotFrame:
    """The plot area of a chart ``height`` pixels high: its grid, border, axis labels and empty-state text."""

    left: float
    top: float
    width: float
    height: float
    chart_height: float

    def axes(self, x_ticks, fx, x_text, y_ticks, fy) -> list[str]:
        return [*_x_grid(x_ticks, fx, self.top, self.top + self.height, x_text),
                *_y_grid(y_ticks, fy, self.left, self.left + self.width),
                f'<rect x="{self.left}" y="{self.top}" width="{self.width}" height="{self.height}" fill="none" '
                'stroke="#888"/>']

    def labels(self, x_label: str, y_label: str) -> list[str]:
        middle_x, middle_y = self.left + self.width / 2, self.top + self.height / 2
        return [f'<text x="{middle_x:.1f}" y="{self.chart_height - 8}" text-anchor="middle" fill="#333">'
                f'{esc(x_label)}</text>',
                f'<text transform="translate(16 {middle_y:.1f}) rotate(-90)" text-anchor="middle" '
                f'fill="#333">{esc(y_label)}</text>']

    def empty(self, message: str) -> str:
        return (f'<text x="{self.left + self.width / 2}" y="{self.top + self.height / 2}" text-anchor="middle" '
                f'fill="#777">{esc(message)}</text>')


def _open(width: int, height: int, title: str, standalone: bool) -> str:
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    return (f'<svg{ns} class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(title)}" {_FONT}><title>{esc(title)}</title>')


def _legend(statuses, x: float, y: float, counts: dict[str, int]) -> str:
    parts = []
    for status in statuses:
        label = f"{status} ({counts.get(status, 0)})"
        parts.append(f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" rx="2" '
                     f'fill="{STATUS_COLORS.get(status, "#555")}"/>'
                     f'<text x="{x + 17:.1f}" y="{y}">{esc(label)}</text>')
        x += 17 + len(label) * _CHAR + 16
    return f'<g class="legend">{"".join(parts)}</g>'


def _x_grid(ticks, fx, y0: float, y1: float, fmt) -> list[str]:
    return [f'<line x1="{fx(t):.1f}" x2="{fx(t):.1f}" y1="{y0}" y2="{y1}" stroke="#e3e3e3"/>'
            f'<text x="{fx(t):.1f}" y="{y1 + 15}" text-anchor="middle" fill="#555">{esc(fmt(t))}</text>' for t in ticks]


def _y_grid(ticks, fy, x0: float, x1: float) -> list[str]:
    return [f'<line x1="{x0}" x2="{x1}" y1="{fy(t):.1f}" y2="{fy(t):.1f}" stroke="#e3e3e3"/>'
            f'<text x="{x0 - 6}" y="{fy(t) + 4:.1f}" text-anchor="end" fill="#555">{esc(_tick_text(t))}</text>'
            for t in ticks]


def _linear_ticks(high: float, n: int, integer: bool = False) -> list[float]:
    """0, step, ..., a round top >= high."""
    high = high if high > 0 else 1
    raw = high / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    count = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def _log_ticks(values) -> list[float]:
    """Powers of ten around the values; with 1-2-5 in between when the range is only a few decades."""
    lo = math.floor(math.log10(min(values)))
    hi = max(math.ceil(math.log10(max(values))), lo + 1)
    steps = (1, 2, 5) if hi - lo <= 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(lo, hi) for m in steps] + [10.0 ** hi]
    return [round(t, 12) for t in ticks]


def _tick_text(value: float) -> str:
    if value >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _cut(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "\u2026"


def _total(counts: dict[str, dict[str, int]], status: str) -> int:
    return sum(c.get(status, 0) for c in counts.values())
