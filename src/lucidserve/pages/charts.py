"""Small inline SVG bar charts: a reference distribution beside the live one, bin by bin.

Plain SVG markup, no script and no external reference, so the chart shows in any browser (and in
a page saved to disk). Every bar carries a `<title>` with its exact share for a pointer's hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR = 9  # px, one bar
GAP = 6  # px, between two bins
PLOT_HEIGHT = 80  # px, the tallest bar
LABEL_SPACE = 64  # px below the bars for the rotated bin labels
LEFT = 4  # px
RIGHT = 48  # px, room for the last rotated label
LABEL_CHARS = 14  # a longer bin label is cut (the full one is in the bar's title)


def distribution_chart(
    labels: Sequence[str], reference: Sequence[float], live: Sequence[float], *, title: str
) -> str:
    """An SVG grouped bar chart of two distributions over the same bins (shares in [0, 1])."""
    top = max([*reference, *live, 1e-9])
    group = 2 * BAR + GAP
    width = LEFT + group * len(labels) + RIGHT
    height = PLOT_HEIGHT + LABEL_SPACE
    parts = [
        f'<svg class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<line x1="0" y1="{PLOT_HEIGHT}" x2="{width}" y2="{PLOT_HEIGHT}" class="axis"/>',
    ]
    for i, (label, ref, now) in enumerate(zip(labels, reference, live, strict=True)):
        x = LEFT + i * group + GAP
        parts.append(_bar(x, ref / top, "reference", f"{label}: reference {ref:.1%}"))
        parts.append(_bar(x + BAR, now / top, "live", f"{label}: live {now:.1%}"))
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
        lx, ly = x + BAR, PLOT_HEIGHT + 6
        parts.append(
            f'<text x="{lx}" y="{ly}" transform="rotate(45 {lx} {ly})">{escape(short)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bar(x: float, share: float, kind: str, title: str) -> str:
    h = max(round(share * PLOT_HEIGHT, 1), 0.0)
    return (
        f'<rect class="{kind}" x="{x}" y="{PLOT_HEIGHT - h}" width="{BAR}" height="{h}">'
        f"<title>{escape(title)}</title></rect>"
    )
