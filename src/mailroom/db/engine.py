"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite is tuned for one process with a few threads: WAL so readers never block the
writer (checkpointed every 64 MB, not 4 MB), foreign keys on (off by default in SQLite),
a busy timeout, and every transaction opened with BEGIN IMMEDIATE so two writers queue
for the lock at the start instead of one failing with "database is locked" half-way
through (the pysqlite transaction recipe in SQLAlchemy's SQLite dialect docs).

The database file is made by Mailroom with mode 0600 before SQLite opens it (SQLite gives
its -wal, -shm and -journal files the database file's mode), and each new connection sets
the three to 0600 again (config.tighten), whatever the umask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailroom.config import open_private, tighten

K = TypeVar("K")
V = TypeVar("V")

# Page cache per connection (SQLite defaults to 2 MB): the sync inserts into indexes that
# outgrow 2 MB after a few thousand messages, and every miss is a read and an eviction.
SQLITE_CACHE_KIB = 16 << 10
# WAL pages before a commit checkpoints them into the database (SQLite's default: 1,000,
# 4 MB). A checkpoint is the only fsync under synchronous=NORMAL, paid by the committing
# transaction: an initial sync wrote 4 MB every few batches and waited 11 s for the
# checkpoints' fsyncs of 64 s at 20,000 messages on a busy machine, 1.3 s with 16,000
# pages (64 MB), bench/README.md. The WAL is cut back to that size after a checkpoint.
SQLITE_WAL_CHECKPOINT_PAGES = 16_000
SQLITE_WAL_LIMIT_BYTES = 64 << 20

# Execution option of a connection that only reads: on SQLite it begins DEFERRED, so it can
# read (from WAL's last commit) while another connection of the same thread holds the write
# lock (matching.address_index refreshes this way inside an ingest transaction).
READ_ONLY = "mailroom_read_only"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, with the SQLite pragmas and locking described above."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine, _sqlite_file(url))
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL, made empty with mode 0600 if missing; None in memory."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    try:
        open_private(path, exclusive=True).close()
    except FileExistsError:
        pass
    except OSError:
        return path  # let SQLite report why it cannot open it
    return path


def _tighten_sqlite(path: str | None) -> None:
    if path is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            tighten(path + suffix)


def _tune_sqlite(engine: Engine, path: str | None) -> None:
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
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
        cursor.close()
        _tighten_sqlite(path)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (short transactions)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def each_in_own_transaction(
    factory: sessionmaker[Session], keys: Iterable[K], work: Callable[[Session, K], V]
) -> dict[K, V]:
    """`work(session, key)` for each key, each in its own short transaction (a sweep over
    every company holds no lock across companies): key → result."""
    done: dict[K, V] = {}
    for key in keys:
        with transaction(factory) as session:
            done[key] = work(session, key)
    return done
