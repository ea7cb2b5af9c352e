"""Charts the workspace draws itself: the geometry of server-side SVG (no script, no external service).

Selectors hand over aggregated numbers; these functions turn them into rectangles and axis ticks in a
fixed viewBox that the templates in `web/charts/` render. Each chart also carries its rows for the table
shown beside it, so a screen reader (or a printout) gets the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

# Horizontal bars: labels on the left, bars in the middle, values on the right.
BAR_WIDTH = 640
BAR_LABEL_WIDTH = 230
BAR_VALUE_WIDTH = 150
BAR_ROW = 30
BAR_THICKNESS = 18

# Columns by week: two columns (this year, a year ago) per week over a value axis.
COLUMN_WIDTH = 640
COLUMN_HEIGHT = 240
COLUMN_AXIS_LEFT = 70
COLUMN_AXIS_BOTTOM = 30
COLUMN_TOP = 12
TICKS = 4


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    count: int | None
    y: int
    length: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    height: int
    label_width: int = BAR_LABEL_WIDTH
    track_width: int = BAR_WIDTH - BAR_LABEL_WIDTH - BAR_VALUE_WIDTH
    value_x: int = BAR_WIDTH - BAR_VALUE_WIDTH + 8
    width: int = BAR_WIDTH
    thickness: int = BAR_THICKNESS

    @property
    def empty(self) -> bool:
        return not any(bar.value for bar in self.bars)


def bar_chart(rows: Sequence[tuple[str, Decimal, int | None]]) -> BarChart:
    """Bars for (label, value, count) rows, the longest for the largest value."""
    largest = max((value for _, value, _ in rows), default=Decimal(0))
    track = BAR_WIDTH - BAR_LABEL_WIDTH - BAR_VALUE_WIDTH
    bars = [
        Bar(
            label=label,
            value=value,
            count=count,
            y=index * BAR_ROW,
            length=round(float(value / largest) * track, 1) if largest > 0 and value > 0 else 0.0,
        )
        for index, (label, value, count) in enumerate(rows)
    ]
    return BarChart(bars=bars, height=max(len(bars), 1) * BAR_ROW)


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class WeekColumns:
    label: str
    title: str
    current: Decimal
    previous: Decimal | None
    current_column: Column
    previous_column: Column | None
    label_x: float


@dataclass(frozen=True)
class Tick:
    value: Decimal
    y: float


@dataclass(frozen=True)
class ColumnChart:
    weeks: list[WeekColumns]
    ticks: list[Tick]
    width: int = COLUMN_WIDTH
    height: int = COLUMN_HEIGHT
    axis_left: int = COLUMN_AXIS_LEFT
    baseline: int = COLUMN_HEIGHT - COLUMN_AXIS_BOTTOM
    column_width: float = 0.0

    @property
    def empty(self) -> bool:
        return not any(week.current or week.previous for week in self.weeks)


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2 or 5 × 10ⁿ not below `value`: a round top for the value axis."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        candidate = Decimal(step).scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)  # pragma: no cover - the loop always returns


def column_chart(rows: Sequence[tuple[str, str, Decimal, Decimal | None]]) -> ColumnChart:
    """Paired columns for (label, title, this year, a year ago) rows; `None` when a week had no twin."""
    largest = max((max(current, previous or Decimal(0)) for _, _, current, previous in rows), default=Decimal(0))
    top = nice_ceiling(largest)
    plot_height = COLUMN_HEIGHT - COLUMN_AXIS_BOTTOM - COLUMN_TOP
    baseline = COLUMN_HEIGHT - COLUMN_AXIS_BOTTOM
    slot = (COLUMN_WIDTH - COLUMN_AXIS_LEFT) / max(len(rows), 1)
    width = round(slot * 0.36, 1)

    def column(x: float, value: Decimal) -> Column:
        height = round(float(value / top) * plot_height, 1) if value > 0 else 0.0
        return Column(x=round(x, 1), y=round(baseline - height, 1), height=height)

    weeks = []
    for index, (label, title, current, previous) in enumerate(rows):
        left = COLUMN_AXIS_LEFT + index * slot + slot * 0.12
        weeks.append(
            WeekColumns(
                label=label,
                title=title,
                current=current,
                previous=previous,
                previous_column=None if previous is None else column(left, previous),
                current_column=column(left + width, current),
                label_x=round(left + width, 1),
            )
        )
    ticks = [
        Tick(
            value=(top * step / TICKS).quantize(Decimal(1), rounding=ROUND_CEILING),
            y=round(baseline - plot_height * step / TICKS, 1),
        )
        for step in range(TICKS + 1)
    ]
    return ColumnChart(weeks=weeks, ticks=ticks, column_width=width)
