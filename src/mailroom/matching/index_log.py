"""Pruning `record_index_changes`, the change log every process's in-memory index follows
(matching.address_index), so it stops growing with every record change ever made.

Per company, the newest `KEEP` rows stay; older ones are deleted, and one marker row
(kind "p", key = the highest id deleted) is written after them. A process whose index is
older than that id cannot tell what it missed from the rows left: reading the log past its
version it meets the marker (its id is above every id deleted, and every later prune writes
a newer one) and rebuilds its index instead. `KEEP` is the index's own `DELTA_LIMIT`: a
process that far behind rebuilds anyway, so pruning costs no process a rebuild it would not
have done.
"""

from __future__ import annotations

import logging

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import each_in_own_transaction
from mailroom.db.matching_models import RecordIndexChange
from mailroom.matching.index_reads import DELTA_LIMIT, PRUNED
from mailroom.periodic import Periodic

log = logging.getLogger(__name__)
KEEP = DELTA_LIMIT


def prune(session: Session, *, company_id: int, keep: int = KEEP) -> int:
    """Delete the company's log rows older than its newest `keep`, leaving the marker that
    sends a process still behind them to a rebuild; returns how many were deleted."""
    horizon = session.scalar(
        select(RecordIndexChange.id)
        .where(RecordIndexChange.company_id == company_id)
        .order_by(RecordIndexChange.id.desc())
        .offset(keep)
        .limit(1)
    )
    if horizon is None:
        return 0
    gone = session.execute(
        delete(RecordIndexChange).where(
            RecordIndexChange.company_id == company_id, RecordIndexChange.id <= horizon
        )
    )
    table: Table = RecordIndexChange.__table__  # type: ignore[assignment]
    session.execute(
        insert(table).values(company_id=company_id, kind=PRUNED, key=str(horizon), record_id=None)
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def prune_all(app: App, *, keep: int = KEEP) -> dict[int, int]:
    """`prune` every company with a log, one short transaction each: company id → deleted."""
    with app.sessions() as session:
        companies = sorted(session.scalars(select(RecordIndexChange.company_id).distinct()))
    return each_in_own_transaction(
        app.sessions,
        companies,
        lambda session, company: prune(session, company_id=company, keep=keep),
    )


class IndexLogPruner(Periodic):
    """Runs `prune_all` every `interval` seconds (a serve thread, a worker chore)."""

    thread_name = "mailroom-index-log"
    failure = "pruning the record index log failed"
    stop_timeout = 10.0
    log = log

    def __init__(self, app: App, *, interval: float = 3600.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Prune every company's log."""
        for company_id, count in prune_all(self.app).items():
            if count:
                log.info("index log: pruned %d rows of company %d", count, company_id)
