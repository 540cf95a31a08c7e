"""Migration 0018: retention of unlinked mail becomes off by default, but a company that
already existed (on the old default: on, 7 days) keeps exactly what it had; one that had
saved its settings keeps them. (A new company's default, off, is
tests/unit/crm/test_privacy.py::test_retention_is_off_for_a_new_company_and_its_preview_counts_what_it_would_delete.)"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from mailroom.db.migrate import alembic_config


def test_companies_from_before_the_migration_keep_their_retention_settings(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0017")
        conn.execute(
            text(
                "INSERT INTO companies (id, name, created_at) VALUES "
                "(1, 'Old default', '2026-01-01'), (2, 'Saved', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO company_privacy (company_id, visibility, retention_days, "
                "retention_enabled) VALUES (2, 'strict', 30, FALSE)"
            )
        )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0018")
        rows = conn.execute(
            text(
                "SELECT company_id, visibility, retention_days, retention_enabled "
                "FROM company_privacy ORDER BY company_id"
            )
        ).all()
        assert [tuple(r) for r in rows] == [(1, "transparent", 7, 1), (2, "strict", 30, 0)]
        conn.execute(
            text("INSERT INTO companies (id, name, created_at) VALUES (3, 'New', '2026-12-01')")
        )
        assert (
            conn.execute(text("SELECT count(*) FROM company_privacy WHERE company_id = 3")).scalar()
            == 0
        )
    engine.dispose()
