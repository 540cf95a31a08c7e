"""Datetimes read back from the database, made timezone-aware.

Everything Mailroom stores is UTC, but SQLite hands back naive datetimes even for
`timezone=True` columns; PostgreSQL hands back aware ones. `as_utc` gives one answer for
both.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC datetime (naive values are taken as UTC); None stays None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
