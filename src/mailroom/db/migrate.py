"""Bring a database to the newest schema with Alembic (the only way tables are made).

Migrations live in `db/migrations/versions`; `alembic_config()` points Alembic there
without an alembic.ini, so `mailroom init` (and every start) can upgrade in-process.

Every command opens the app, and importing Alembic costs more than most commands, so
`upgrade` first reads the `alembic_version` table with SQLAlchemy core and compares it
with `HEAD`, the newest revision, kept here as a constant (tests/interfaces/cli/test_startup.py
checks it against Alembic's script directory): Alembic is imported only to upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The head revision of db/migrations/versions: a new migration changes it in the same commit.
HEAD = "0027"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration the database lacks (a no-op when it is current)."""
    if is_current(engine):
        return
    from alembic import command

    cfg = alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite's batch mode rebuilds a table (copy, DROP, rename); with foreign keys on,
            # the DROP deletes every row that references it by ON DELETE CASCADE (a record's
            # addresses, a message's copies and links). The pragma only takes effect outside
            # a transaction, so it is set on the driver's connection before BEGIN.
            _set_foreign_keys(conn, on=False)
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migrations left broken references: {broken[:5]}")
        finally:
            if sqlite:
                _set_foreign_keys(conn, on=True)


def _set_foreign_keys(conn: Connection, *, on: bool) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def is_current(engine: Engine) -> bool:
    """Whether the database is at `HEAD` (one revision row, the newest)."""
    with engine.connect() as conn:
        return stored_revisions(conn) == [HEAD]


def stored_revisions(conn: Connection) -> list[str]:
    """The revisions in the database's `alembic_version` table (none before the first)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return []
    return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]


def script_head() -> str | None:
    """The head revision according to Alembic's script directory (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
