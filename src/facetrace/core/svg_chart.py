"""A line chart of whole counts as an SVG document, written without a plotting library.

Reports embed it inline in their HTML, so it uses presentation attributes only (no ``style``
attribute or element, which a strict Content-Security-Policy would refuse) and escapes every
piece of text it is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: Line colours, one per series in turn (distinguishable with the common colour-vision deficiencies).
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442")
WIDTH = 640
PLOT_HEIGHT = 200
#: Room left of the plot for the counts, above it for the title, below it for the x labels.
LEFT, TOP, BOTTOM = 44, 30, 24
LEGEND_ROW = 18


def count_ticks(peak: int, most: int = 5) -> list[int]:
    """Whole-number gridlines from 0 to at least ``peak``: at most ``most`` of them, a step of 1, 2 or 5
    times a power of ten."""
    if peak <= 0:
        return [0, 1]
    rough = peak / (most - 1)
    power = 10 ** max(0, math.floor(math.log10(rough)))
    step = next(power * f for f in (1, 2, 5, 10) if power * f >= rough)
    return list(range(0, step * math.ceil(peak / step) + 1, step))


def line_chart_svg(
    title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[int]], y_label: str
) -> str:
    """``series`` (a name and one count per x label each) as lines over ``x_labels``, with a legend.

    The result is a standalone ``<svg>`` element, sized by its ``viewBox``."""
    plot_width = WIDTH - LEFT - 10
    ticks = count_ticks(max((max(counts, default=0) for counts in series.values()), default=0))
    top = ticks[-1]
    height = TOP + PLOT_HEIGHT + BOTTOM + LEGEND_ROW * len(series) + 6

    def x(position: int) -> float:
        return LEFT + plot_width * (position + 0.5) / max(len(x_labels), 1)

    def y(count: int) -> float:
        return TOP + PLOT_HEIGHT * (1 - count / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2:g}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<text transform="translate(12 {TOP + PLOT_HEIGHT / 2:g}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>",
    ]
    for tick in ticks:
        level = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_width}" y1="{level:.1f}" y2="{level:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{level + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    below = TOP + PLOT_HEIGHT + 16
    parts.extend(
        f'<text x="{x(position):.1f}" y="{below}" text-anchor="middle">{escape(label)}</text>'
        for position, label in enumerate(x_labels)
    )
    for number, (name, counts) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = " ".join(f"{x(position):.1f},{y(count):.1f}" for position, count in enumerate(counts))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{x(position):.1f}" cy="{y(count):.1f}" r="3" fill="{colour}"/>'
            for position, count in enumerate(counts)
        )
        row = TOP + PLOT_HEIGHT + BOTTOM + LEGEND_ROW * number + 12
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + 20}" y1="{row - 4}" y2="{row - 4}" stroke="{colour}" '
            f'stroke-width="2"/><text x="{LEFT + 26}" y="{row}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
