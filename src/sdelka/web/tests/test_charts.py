"""The geometry of the charts the workspace draws itself."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sdelka.web import charts

money = st.decimals(min_value=0, max_value=Decimal("1e12"), places=2, allow_nan=False, allow_infinity=False)


def test_nice_ceiling_rounds_up_to_one_two_or_five():
    assert charts.nice_ceiling(Decimal("0")) == 1
    assert charts.nice_ceiling(Decimal("7")) == 10
    assert charts.nice_ceiling(Decimal("120")) == 200
    assert charts.nice_ceiling(Decimal("200")) == 200
    assert charts.nice_ceiling(Decimal("3100.50")) == 5000


@given(money)
def test_nice_ceiling_is_never_below_the_value_nor_ten_times_above(value):
    top = charts.nice_ceiling(value)
    assert top >= value
    if value >= 1:
        assert top < value * 10


def test_bars_are_proportional_to_the_largest_value():
    chart = charts.bar_chart([("A", Decimal("50"), 1), ("B", Decimal("200"), 3), ("C", Decimal("0"), 0)])
    a, b, c = chart.bars
    assert b.length == chart.track_width and a.length == chart.track_width / 4 and c.length == 0
    assert [bar.y for bar in chart.bars] == [0, charts.BAR_ROW, 2 * charts.BAR_ROW]
    assert chart.height == 3 * charts.BAR_ROW and not chart.empty
    assert charts.bar_chart([("A", Decimal(0), 0)]).empty


@given(st.lists(st.tuples(money, st.one_of(st.none(), money)), min_size=1, max_size=16))
def test_columns_stay_inside_the_plot(rows):
    chart = charts.column_chart([(str(i), f"week {i}", cur, prev) for i, (cur, prev) in enumerate(rows)])
    assert len(chart.weeks) == len(rows)
    for week, (current, previous) in zip(chart.weeks, rows, strict=True):
        for column in (week.current_column, week.previous_column):
            if column is None:
                continue
            assert charts.COLUMN_TOP - 0.1 <= column.y <= chart.baseline
            assert abs(column.y + column.height - chart.baseline) < 0.2
            assert charts.COLUMN_AXIS_LEFT <= column.x <= chart.width - chart.column_width
        assert (week.previous_column is None) == (previous is None)
        if current == 0:
            assert week.current_column.height == 0
        if current > 0 and current * 200 >= max(
            max(c, p or 0) for c, p in rows
        ):  # half a percent of the top or more shows
            assert week.current_column.height > 0
    assert chart.ticks[0].value == 0 and chart.ticks[-1].y == charts.COLUMN_TOP
