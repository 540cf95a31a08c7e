"""The activity report's date range: any dates a caller sends give a range or a BadInput,
never a server error (schemathesis found `to=0001-01-01` overflowing the default start)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.errors import BadInput
from mailroom.services.activity_report import EARLIEST, LATEST, report_range

days = st.one_of(st.none(), st.dates())


@given(start=days, end=days)
def test_any_dates_give_a_range_or_a_clear_error(start: date | None, end: date | None) -> None:
    try:
        low, high = report_range(start=start, end=end, today=date(2026, 12, 1))
    except BadInput as refused:
        assert refused.hint
        return
    assert low <= high and (high - low).days <= 3 * 366
    assert low >= EARLIEST - timedelta(weeks=12) and high <= LATEST


@pytest.mark.parametrize("edge", [date.min, date.max, date(1899, 12, 31)])
def test_the_calendars_edges_are_refused_with_the_range_to_use(edge: date) -> None:
    with pytest.raises(BadInput, match="outside the dates a report covers"):
        report_range(start=None, end=edge)


def test_the_default_is_the_last_twelve_weeks_to_today() -> None:
    assert report_range(start=None, end=None, today=date(2026, 12, 1)) == (
        date(2026, 9, 9),
        date(2026, 12, 1),
    )
