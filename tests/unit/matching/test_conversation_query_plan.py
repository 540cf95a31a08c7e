"""The subject fallback's read (matching/conversations.py) is served by the subject key's
index with the date in it, on SQLite, which has no planner statistics to choose by:
without the date in the index it read every message of a key at any date, and on the date
index every message of the window (bench/README.md, "Round 4: conversations")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from mailroom.app import App
from mailroom.matching.subject_threads import _CANDIDATES


def test_the_subject_fallback_reads_through_the_subject_and_date_index(sqlite_app: App) -> None:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    params = {
        "company": 1,
        "keys": ["quote request", "order"],
        "first": datetime(2026, 1, 1, tzinfo=UTC),
        "last": datetime(2026, 3, 1, tzinfo=UTC),
    }
    with sqlite_app.engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", record)
        conn.execute(_CANDIDATES, params).all()
        event.remove(conn, "before_cursor_execute", record)
        statement, parameters = next(s for s in sent if s[0].startswith("SELECT"))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        plan = [row[-1] for row in cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert any("ix_messages_company_subject_date" in step for step in plan), plan
    assert any("date_utc>?" in step and "subject_key=?" in step for step in plan), plan
