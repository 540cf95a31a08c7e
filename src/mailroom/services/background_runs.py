"""The row of a background run on PostgreSQL (db.run_models): queued by the request,
started or resumed by the worker's job, shown by the pages and the API.

A row says `queued` or `running` while its job waits or runs; a row in one of those
states whose job is gone (deleted by hand, refused at recovery) shows as `failed`, so a
page never shows progress of nothing for ever. Only used on PostgreSQL: on SQLite the
same runs are threads of `mailroom serve` with their progress in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailroom.db.run_models import BackgroundRun

ACTIVE = ("queued", "running")
INTERRUPTED = "The run was interrupted; start it again."


@dataclass(frozen=True, slots=True)
class RunKey:
    """A run's identity: its kind, its key, and the Procrastinate lock of its jobs."""

    kind: str
    key: str

    @property
    def lock(self) -> str:
        """The lock and queueing lock of the run's jobs (one waits, one runs)."""
        return f"{self.kind}:{self.key}"


def _row(session: Session, run: RunKey, *, for_update: bool = False) -> BackgroundRun | None:
    query = select(BackgroundRun).where(
        BackgroundRun.kind == run.kind, BackgroundRun.key == run.key
    )
    return session.scalar(query.with_for_update() if for_update else query)


def job_alive(session: Session, run: RunKey) -> bool:
    """Whether a job of the run waits or runs (Procrastinate's table)."""
    found = session.execute(
        text(
            "SELECT 1 FROM procrastinate_jobs WHERE lock = :lock "
            "AND status IN ('todo', 'doing') LIMIT 1"
        ),
        {"lock": run.lock},
    ).first()
    return found is not None


def active(session: Session, run: RunKey) -> BackgroundRun | None:
    """The run's row if it is queued or running with a live job."""
    row = _row(session, run)
    if row is None or row.state not in ACTIVE or not job_alive(session, run):
        return None
    return row


def queue_run(session: Session, run: RunKey, *, company_id: int, total: int) -> BackgroundRun:
    """Mark the run queued with nothing done (in the caller's transaction)."""
    row = _row(session, run, for_update=True)
    if row is None:
        row = BackgroundRun(kind=run.kind, key=run.key, company_id=company_id)
        session.add(row)
    row.state, row.total, row.done, row.affected, row.after = "queued", total, 0, 0, 0
    row.outcome = None
    session.flush()
    return row


def start_run(session: Session, run: RunKey, *, company_id: int, resume: bool) -> BackgroundRun:
    """The row of a job that starts: `running`, its progress kept if `resume` (a retried
    or handed-back job goes on from `after`), else reset."""
    row = _row(session, run, for_update=True)
    if row is None:
        row = BackgroundRun(kind=run.kind, key=run.key, company_id=company_id, total=0)
        session.add(row)
        resume = False
    if not resume:
        row.done, row.affected, row.after = 0, 0, 0
    row.state, row.outcome = "running", None
    session.flush()
    return row


def record_progress(
    session: Session, run: RunKey, *, after: int, done: int, affected: int = 0
) -> None:
    """Save the run's progress in the caller's transaction (the one of the chunk done):
    the last message id done, how many are done and how many changed."""
    row = _row(session, run, for_update=True)
    if row is not None:
        row.after, row.done, row.affected = after, done, affected


def finish_run(session: Session, run: RunKey, *, state: str, outcome: str | None) -> None:
    """Mark the run `done` or `failed` with its outcome in words."""
    row = _row(session, run, for_update=True)
    if row is not None:
        row.state, row.outcome = state, outcome


def shown(session: Session, run: RunKey) -> BackgroundRun | None:
    """The run's row as a page shows it: `failed` (interrupted) when active without a job."""
    row = _row(session, run)
    if row is not None and row.state in ACTIVE and not job_alive(session, run):
        session.expunge(row)  # shown, not saved
        row.state, row.outcome = "failed", INTERRUPTED
    return row
