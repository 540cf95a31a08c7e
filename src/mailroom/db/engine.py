"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite is tuned for one process with a few threads: WAL so readers never block the
writer, foreign keys on (off by default in SQLite), a busy timeout, and every transaction
opened with BEGIN IMMEDIATE so two writers queue for the lock at the start instead of one
failing with "database is locked" half-way through (the pysqlite transaction recipe in
SQLAlchemy's SQLite dialect docs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Page cache per connection (SQLite defaults to 2 MB): the sync inserts into indexes that
# outgrow 2 MB after a few thousand messages, and every miss is a read and an eviction.
SQLITE_CACHE_KIB = 16 << 10


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, with the SQLite pragmas and locking described above."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see "begin" below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (short transactions)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
