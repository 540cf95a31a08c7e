"""IMAP fetch helpers (connectors.imap_fetch): SINCE dates, UID sets, size batches,
INTERNALDATE."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from mailroom.app import App


def test_since_date_is_a_calendar_day(sqlite_app: App) -> None:
    from mailroom.connectors.base import size_batches
    from mailroom.connectors.imap_fetch import imap_date, parse_uid_set, uid_set

    assert imap_date(date(2026, 2, 1)) == "1-Feb-2026"
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
    assert parse_uid_set(b"1:3,5,9:10") == {1, 2, 3, 5, 9, 10}
    sizes = [(1, 10), (2, 10), (3, 50), (4, 10)]
    assert size_batches(sizes, max_count=3, max_bytes=25) == [[1, 2], [3], [4]]


@given(
    day=st.integers(1, 31),
    month=st.sampled_from(["Jan", "feb", "MAR", "Apr", "May", "Jun", "Jul", "Aug", "Xyz"]),
    year=st.integers(1900, 2100),
    hour=st.integers(0, 25),
    minute=st.integers(0, 61),
    second=st.integers(0, 61),
    sign=st.sampled_from("+-"),
    offset_hours=st.integers(0, 24),
    offset_minutes=st.integers(0, 70),
    pad=st.booleans(),
)
def test_internaldate_reads_what_strptime_reads(
    day: int,
    month: str,
    year: int,
    hour: int,
    minute: int,
    second: int,
    sign: str,
    offset_hours: int,
    offset_minutes: int,
    pad: bool,
) -> None:
    from mailroom.connectors.imap_fetch import _internaldate, _internaldate_strptime

    day_text = f"{day:2d}" if pad else f"{day:02d}"
    value = (
        f"{day_text}-{month}-{year} {hour:02d}:{minute:02d}:{second:02d} "
        f"{sign}{offset_hours:02d}{offset_minutes:02d}"
    ).encode()
    assert _internaldate(value) == _internaldate_strptime(value)
