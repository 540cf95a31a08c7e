"""Bar charts as server-rendered SVG: geometry here, markup in `_bar_chart.html`.

No JavaScript and no chart library: the page is one HTML answer that any browser (and the
strict Content-Security-Policy: no inline styles, colours come from app.css classes) shows
as it is. The SVG has a viewBox and no fixed size, so it scales to a 390-px phone screen.
Each row is one bar of two parts, sent then received, scaled to the largest total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 400
LABEL = 130
COUNT = 40
ROW = 26
BAR = 18


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of the chart: its label, its two parts and where they are drawn."""

    label: str
    sent: int
    received: int
    y: int
    sent_width: float
    received_width: float

    @property
    def total(self) -> int:
        return self.sent + self.received


@dataclass(frozen=True, slots=True)
class BarChart:
    """The chart's bars and the SVG's size (viewBox units)."""

    bars: list[Bar]
    width: int
    height: int
    label_width: int
    bar_height: int
    scale_max: int


def bar_chart(rows: list[dict[str, Any]], labels: list[str]) -> BarChart:
    """The geometry of a stacked horizontal bar chart of `rows` (`sent`, `received`)."""
    largest = max((int(r["sent"]) + int(r["received"]) for r in rows), default=0) or 1
    room = WIDTH - LABEL - COUNT
    bars = [
        Bar(
            label=label,
            sent=int(row["sent"]),
            received=int(row["received"]),
            y=4 + index * ROW,
            sent_width=round(room * int(row["sent"]) / largest, 1),
            received_width=round(room * int(row["received"]) / largest, 1),
        )
        for index, (row, label) in enumerate(zip(rows, labels, strict=True))
    ]
    return BarChart(
        bars=bars,
        width=WIDTH,
        height=8 + ROW * max(len(bars), 1),
        label_width=LABEL,
        bar_height=BAR,
        scale_max=largest,
    )
