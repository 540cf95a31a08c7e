"""Planner statistics for the tables a sync grows (PostgreSQL).

PostgreSQL plans each query from the statistics ANALYZE gathered: autovacuum's, a minute
apart at best, and never when it is off. Tables that grew from empty during an initial
sync still look nearly empty to the planner, which then chose to find a batch's 200
identities (`company_id = ? AND identity IN (…)`, backed by a unique index on both) by
reading every row of the company and filtering: EXPLAIN ANALYZE at 20,000 messages showed
18,800 rows removed by the filter and 0.1-0.6 s per lookup (bench/README.md, "PostgreSQL").

`GrowthAnalyzer` ANALYZEs those tables from the syncing process whenever this sync's new
messages have doubled the table since its last estimate (the first time after
`MIN_ROWS`): about log2(growth) times per sync, each bounded by ANALYZE's sample (300 x
the statistics target rows per table), each in a short transaction of its own between
two batches (no network I/O inside). A resync adding a few messages to a large table
never triggers it. On SQLite it does nothing: its planner takes the unique index anyway.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from mailroom.db.engine import transaction

log = logging.getLogger(__name__)

# The tables a batch inserts into and looks up by index (ingest, matching.conversations).
TABLES = (
    "messages",
    "message_copies",
    "message_addresses",
    "message_links",
    "conversation_nodes",
    "conversations",
)
MIN_ROWS = 1_000
LOCK_TIMEOUT = "2s"  # another process analysing the same tables: skip, it does our work


class GrowthAnalyzer:
    """Counts the messages one sync stores and ANALYZEs `TABLES` when they have doubled."""

    def __init__(
        self, sessions: sessionmaker[Session], *, dialect: str, min_rows: int = MIN_ROWS
    ) -> None:
        self._sessions = sessions
        self._enabled = dialect == "postgresql"
        self._min_rows = min_rows
        self._rows: int | None = None  # the planner's estimate of `messages` at our last look
        self._added = 0
        self.runs = 0  # how many times ANALYZE ran (for tests and benchmarks)

    def added(self, messages: int) -> None:
        """Note `messages` new messages committed; ANALYZE when the table has doubled."""
        if messages <= 0 or not self._enabled:
            return
        if self._rows is None:
            self._rows = self._estimate()
        self._added += messages
        if self._added < max(self._min_rows, self._rows):
            return
        if self._analyze():
            self.runs += 1
        # failed or not, wait for the next doubling: a lock held elsewhere is not waited
        # for at every batch
        self._rows = max(self._rows + self._added, self._estimate())
        self._added = 0

    def _estimate(self) -> int:
        """The planner's row count of `messages` (pg_class.reltuples; -1: never analysed)."""
        with self._sessions() as session:
            rows = session.scalar(
                text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")
            )
        return max(int(rows or 0), 0)

    def _analyze(self) -> bool:
        try:
            with transaction(self._sessions) as session:
                session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                session.execute(text(f"ANALYZE {', '.join(TABLES)}"))
        except DBAPIError as exc:  # a lock held by another ANALYZE, or no right to analyse
            log.debug("ANALYZE of the synced tables skipped: %s", exc)
            return False
        return True
