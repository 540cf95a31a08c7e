"""Background runs of the PostgreSQL mode: relinking a record's stored mail, searching the
server for it, running a rule on stored mail (issue 14; services.background_runs).

A run is one row per (kind, key): the job that does the work writes its progress in the
same transaction as each chunk of work (`after`: the last message id done), so a worker
killed mid-run leaves a row that says exactly what was done, and the retried job resumes
from there. The pages and the API read the row wherever the job runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow


class BackgroundRun(Base):
    """A background run's state and progress (`done` of `total`, `affected` changed)."""

    __tablename__ = "background_runs"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_background_runs_kind_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # relink | retro | rule
    key: Mapped[str] = mapped_column(String(300))  # record id, or "company:rule name"
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    affected: Mapped[int] = mapped_column(Integer, default=0)
    after: Mapped[int] = mapped_column(Integer, default=0)  # last message id done: resume here
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class IdleWatcher(Base):
    """A worker that runs IDLE watchers (it serves the `sync` queue with watching on):
    jobs.watch spreads the watched mailboxes over the live ones only, so a worker started
    with `--queues chores` is never given mailboxes it would not watch. Its row is
    written at its first reconcile and deleted when it stops; the liveness is Procrastinate's
    heartbeat (`procrastinate_workers`)."""

    __tablename__ = "idle_watchers"
    worker_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    process: Mapped[str] = mapped_column(String(300))  # host:pid, for people reading it
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
