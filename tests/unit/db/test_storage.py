"""Storage on SQLite: WAL with foreign keys, and a second open does not migrate again."""

from __future__ import annotations

from sqlalchemy import text

from mailroom.app import App


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_app: App) -> None:
    with sqlite_app.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_opening_twice_does_not_migrate_again(sqlite_app: App) -> None:
    from mailroom.db.migrate import is_current

    assert is_current(sqlite_app.engine)
