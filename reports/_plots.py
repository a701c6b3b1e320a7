"""Plots for the HTML reports, drawn by matplotlib as inline SVG (no pyplot state, no files, no TensorFlow).

Each function takes plain data from a typed report and returns one ``<svg>``
element; text stays text (``svg.fonttype: none``) and ids are fixed, so the
same report always renders to the same page.
"""
from __future__ import annotations

import contextlib
import io
import math
import re

from ._mplcache import private_matplotlib_cache

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")  # Okabe-Ito
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "ckptkit", "font.size": 10, "axes.spines.top": False,
          "axes.spines.right": False, "axes.grid": True, "grid.color": "#e4e4e4"}


def _matplotlib():
    """matplotlib, its cache kept out of the user's home (:mod:`._mplcache`)."""
    private_matplotlib_cache()
    import matplotlib  # noqa: PLC0415 - loads only for HTML pages

    return matplotlib


@contextlib.contextmanager
def _plot(width: float = 6.4, height: float = 3.4):
    """``(figure, axes)`` of one plot, drawn in the reports' style."""
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure  # noqa: PLC0415

    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(width, height), layout="constrained")
        yield figure, figure.add_subplot()


def _svg(figure) -> str:
    """The figure as inline SVG (called inside :func:`_plot`, so in its style)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "ckptkit"})
    text = buffer.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate, no content
    return text[text.index("<svg"):]  # inline: no XML declaration or DOCTYPE


def _finite(points) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if y is not None and math.isfinite(y)]


def line_chart(series: dict[str, list], title: str, xlabel: str, ylabel: str) -> str:
    """One line per ``series`` entry (``label -> [(x, y), ...]``), the y axis fitted to the data."""
    with _plot() as (figure, axes):
        for (label, points), color in zip(series.items(), COLORS * 4):
            points = _finite(points)
            if points:
                xs, ys = zip(*points)
                axes.plot(xs, ys, label=label, color=color, linewidth=1.6, marker="o" if len(xs) <= 20 else None,
                          markersize=3)
        axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if len(series) > 1:
            axes.legend(frameon=False)
        return _svg(figure)


def bar_chart(values: dict[str, float | None], title: str, ylabel: str) -> str:
    """One bar per label, its value written on it."""
    shown = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    with _plot(max(6.4, 0.7 * len(shown) + 2.0)) as (figure, axes):
        bars = axes.bar(list(shown), list(shown.values()), color=COLORS[0])
        axes.bar_label(bars, fmt="%.3f", padding=2)
        axes.set(title=title, ylabel=ylabel)
        axes.set_ylim(0, max([*shown.values(), 0.0]) * 1.15 or 1.0)
        axes.tick_params(axis="x", rotation=30 if len(shown) > 6 else 0)
        return _svg(figure)


def grouped_bars(groups: dict[str, dict[str, float | None]], title: str, ylabel: str) -> str:
    """Bars by category, one colour per group (``group -> {category: value}``), side by side."""
    categories = sorted({c for values in groups.values() for c in values})
    width = 0.8 / max(1, len(groups))
    with _plot(max(6.4, 0.9 * len(categories) + 2.0)) as (figure, axes):
        for i, ((group, values), color) in enumerate(zip(groups.items(), COLORS * 4)):
            heights = [values.get(c) if values.get(c) is not None else 0.0 for c in categories]
            axes.bar([k + (i - (len(groups) - 1) / 2) * width for k in range(len(categories))], heights, width,
                     label=group, color=color)
        axes.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 6 else 0)
        axes.set(title=title, ylabel=ylabel)
        axes.legend(frameon=False)
        return _svg(figure)


def labelled_scatter(points: list[tuple[str, float, float]], title: str, xlabel: str, ylabel: str) -> str:
    """One point per ``(label, x, y)``, each in its own colour with a legend (labels never overlap), the y
    axis fitted to the values with a margin, not fixed at 0 to 1."""
    points = [(label, x, y) for label, x, y in points if y is not None and math.isfinite(y)]
    with _plot() as (figure, axes):
        for (label, x, y), color in zip(points, COLORS * 4):
            axes.scatter([x], [y], s=46, color=color, edgecolor="#333", zorder=3, label=f"{label}: {y:.4f}")
        if points:
            ys = [y for _, _, y in points]
            margin = max((max(ys) - min(ys)) * 0.25, abs(max(ys)) * 0.02, 1e-3)
            axes.set_ylim(min(ys) - margin, max(ys) + margin)
            axes.set_xlim(0, max(x for _, x, _ in points) * 1.1 or 1.0)
            axes.legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
        return _svg(figure)
