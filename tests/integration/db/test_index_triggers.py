"""Every trigger that keeps matching's in-memory index in step exists after all migrations:
a later migration that rebuilds `records`, `record_emails` or `record_domains` (SQLite's
batch mode) must re-create them, or record changes would stop reaching the index."""

from __future__ import annotations

from sqlalchemy import text

from mailroom.app import App
from mailroom.db import index_triggers


def test_every_index_trigger_exists_after_all_migrations(any_app: App) -> None:
    dialect = any_app.engine.dialect.name
    query = (
        "SELECT DISTINCT trigger_name FROM information_schema.triggers"
        if dialect == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    with any_app.engine.connect() as conn:
        present = {row[0] for row in conn.execute(text(query))}
    assert set(index_triggers.trigger_names(dialect)) <= present
