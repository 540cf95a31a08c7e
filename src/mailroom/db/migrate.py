"""Bring a database to the newest schema with Alembic (the only way tables are made).

Migrations live in `db/migrations/versions`; `alembic_config()` points Alembic there
without an alembic.ini, so `mailroom init` (and every start) can upgrade in-process.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration the database lacks (a no-op when it is current)."""
    cfg = alembic_config()
    if is_current(engine, cfg):
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_current(engine: Engine, cfg: Config | None = None) -> bool:
    head = ScriptDirectory.from_config(cfg or alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current == head
