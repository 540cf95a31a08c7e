"""WAL checkpoints in a background thread (db/checkpoints.py): the thread checkpoints what
commits wrote, so the next writer restarts the WAL; no thread where none is needed."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from mailroom.db.checkpoints import background_checkpoints
from mailroom.db.engine import make_engine


def test_commits_are_checkpointed_by_the_background_thread_and_the_wal_restarts(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    wal = tmp_path / "db.sqlite3-wal"
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
    with background_checkpoints(engine, every=0.01) as checkpointer:
        assert checkpointer is not None
        for _ in range(20):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (randomblob(100000))"))
            deadline = time.monotonic() + 30  # a bound on a wait, not a timing assertion
            done = checkpointer.done + 2  # one begun after the commit has ended
            while checkpointer.done < done and time.monotonic() < deadline:
                time.sleep(0.01)
            assert checkpointer.done >= done, "a commit was followed by a checkpoint"
    assert not checkpointer.is_alive()
    # Each transaction restarted the WAL from its start: it holds about one, not twenty.
    assert wal.stat().st_size < 10 * 100_000
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 20
    engine.dispose()


def test_no_thread_for_an_in_memory_database() -> None:
    engine = make_engine("sqlite://")
    with background_checkpoints(engine) as checkpointer:
        assert checkpointer is None
    engine.dispose()
