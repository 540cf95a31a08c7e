"""SQLite's WAL checkpoints in a background thread while a large sync writes.

Under `synchronous=NORMAL` a commit in WAL mode does not wait for the disk; a checkpoint
(copying the WAL's pages into the database file, then two fsyncs) is the only time a
writer does, and SQLite runs it in whichever connection commits when the WAL passes
`wal_autocheckpoint` pages (db/engine.py). During an initial sync that is the ingesting
thread, the sync's bottleneck: at 100,000 messages its COMMITs took 1.6 s of its CPU and
3.7 s of its wall time (bench/README.md, "Round 4").

`background_checkpoints(engine)` moves that work to a thread with its own connection for
the duration of a block: every `every` seconds it runs a PASSIVE checkpoint, which copies
what is committed without blocking the writer or readers (and costs next to nothing when
nothing new is), and the writer's next transaction restarts the WAL from its beginning.
The WAL so stays far below the autocheckpoint size, which remains as a backstop (the
thread stopped, or behind). On PostgreSQL, or an in-memory SQLite database, the block
runs unchanged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

__all__ = ["Checkpointer", "background_checkpoints"]

log = logging.getLogger(__name__)


@contextmanager
def background_checkpoints(engine: Engine, *, every: float = 0.5) -> Iterator[Checkpointer | None]:
    """Checkpoint `engine`'s SQLite WAL in a background thread until the block ends; yields
    the thread (None when there is nothing to do)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        yield None
        return
    checkpointer = Checkpointer(path, every)
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()


class Checkpointer(threading.Thread):
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` every `every` seconds until stopped."""

    def __init__(self, path: str, every: float) -> None:
        super().__init__(name="mailroom-wal-checkpoints", daemon=True)
        self.path = path
        self.every = every
        self.done = 0  # checkpoints run (tests)
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except sqlite3.Error:
            log.debug("WAL checkpoints: cannot open %s", self.path, exc_info=True)
            return
        try:
            while not self._stopping.wait(self.every):
                self._checkpoint(connection)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error:  # busy, or the database went away: the backstop remains
            log.debug("WAL checkpoints: a checkpoint of %s failed", self.path, exc_info=True)

    def stop(self) -> None:
        """Stop and wait for the thread (a checkpoint under way completes first)."""
        self._stopping.set()
        self.join()
