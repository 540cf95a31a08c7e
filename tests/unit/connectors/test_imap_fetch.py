"""IMAP fetch helpers (connectors.imap_fetch): SINCE dates, UID sets, size batches."""

from __future__ import annotations

from datetime import date

from mailroom.app import App


def test_since_date_is_a_calendar_day(sqlite_app: App) -> None:
    from mailroom.connectors.base import size_batches
    from mailroom.connectors.imap_fetch import imap_date, parse_uid_set, uid_set

    assert imap_date(date(2026, 2, 1)) == "1-Feb-2026"
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
    assert parse_uid_set(b"1:3,5,9:10") == {1, 2, 3, 5, 9, 10}
    sizes = [(1, 10), (2, 10), (3, 50), (4, 10)]
    assert size_batches(sizes, max_count=3, max_bytes=25) == [[1, 2], [3], [4]]
