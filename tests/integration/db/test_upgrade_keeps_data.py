"""Upgrading an existing SQLite database keeps its rows: SQLite's batch mode rebuilds a
table to alter it (copy, DROP, rename), and with foreign keys on the DROP would delete every
row referencing it by ON DELETE CASCADE — a record's addresses and domains when migration
0017 rebuilds `records`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from mailroom.db.engine import make_engine
from mailroom.db.migrate import HEAD, alembic_config, stored_revisions, upgrade


def test_an_upgrade_through_a_table_rebuild_keeps_the_rows_that_reference_it(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")  # foreign keys on
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0016")  # the last revision before `records` is rebuilt
        conn.execute(
            text("INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO records (id, company_id, type, name, fields, created_at, updated_at)"
                " VALUES (1, 1, 'account', 'Client Ltd', '{}', '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO record_emails (record_id, company_id, field, address)"
                " VALUES (1, 1, 'main', 'jo@client.example')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO record_domains (record_id, company_id, domain)"
                " VALUES (1, 1, 'client.example')"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert stored_revisions(conn) == [HEAD]
        assert conn.execute(text("SELECT address FROM record_emails")).scalars().all() == [
            "jo@client.example"
        ]
        assert conn.execute(text("SELECT domain FROM record_domains")).scalars().all() == [
            "client.example"
        ]
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1, "back on afterwards"
    engine.dispose()
