"""What the workers are doing, read from Procrastinate's tables (read-only).

For `mailroom workers` and the mailbox JSON (`worker`, `queued`, `queue_depth`). Plain
SQL on `procrastinate_workers` and `procrastinate_jobs` through Mailroom's own session:
a page or an API call reads these without opening a second connection pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from mailroom.jobs.queue import SYNC_TASK


@dataclass
class RunningJob:
    """A job a worker is running."""

    id: int
    task: str
    queue: str
    mailbox_id: int | None
    attempts: int


@dataclass
class WorkerInfo:
    """A registered worker: its id, last heartbeat, whether it is alive, its jobs."""

    id: int
    last_heartbeat: datetime
    alive: bool
    jobs: list[RunningJob] = field(default_factory=list)
    watching: str | None = None  # host:pid when it runs IDLE watchers (idle_watchers)


@dataclass(frozen=True)
class MailboxJobs:
    """One mailbox's place in the queue: the worker syncing it, a waiting job."""

    worker_id: int | None
    queued: bool


def list_workers(session: Session, *, stalled_after: float) -> list[WorkerInfo]:
    """Every registered worker (alive: a heartbeat within `stalled_after` s) and its jobs."""
    rows = session.execute(
        text(
            "SELECT w.id, w.last_heartbeat, "
            "w.last_heartbeat >= now() - make_interval(secs => :stalled) AS alive, "
            "i.process FROM procrastinate_workers w "
            "LEFT JOIN idle_watchers i ON i.worker_id = w.id ORDER BY w.id"
        ),
        {"stalled": stalled_after},
    )
    workers = {
        row.id: WorkerInfo(row.id, row.last_heartbeat, bool(row.alive), watching=row.process)
        for row in rows
    }
    jobs = session.execute(
        text(
            "SELECT id, worker_id, task_name, queue_name, args->>'mailbox_id' AS mailbox, "
            "attempts FROM procrastinate_jobs WHERE status = 'doing' ORDER BY id"
        )
    )
    for job in jobs:
        if job.worker_id in workers:
            workers[job.worker_id].jobs.append(
                RunningJob(
                    id=job.id,
                    task=job.task_name,
                    queue=job.queue_name,
                    mailbox_id=int(job.mailbox) if job.mailbox is not None else None,
                    attempts=job.attempts,
                )
            )
    return list(workers.values())


def queue_depth(session: Session) -> dict[str, int]:
    """Jobs waiting (`todo`, due now or later) per queue."""
    rows = session.execute(
        text(
            "SELECT queue_name, count(*) FROM procrastinate_jobs "
            "WHERE status = 'todo' GROUP BY queue_name"
        )
    )
    return {name: int(count) for name, count in rows}


def mailbox_jobs(session: Session) -> dict[int, MailboxJobs]:
    """Per mailbox with a sync job running or waiting: the worker id, whether one waits."""
    rows = session.execute(
        text(
            "SELECT (args->>'mailbox_id')::int AS mailbox, status, worker_id "
            "FROM procrastinate_jobs "
            "WHERE task_name = :task AND status IN ('todo', 'doing')"
        ),
        {"task": SYNC_TASK},
    )
    found: dict[int, MailboxJobs] = {}
    for mailbox, status, worker_id in rows:
        before = found.get(mailbox, MailboxJobs(worker_id=None, queued=False))
        if status == "doing":
            found[mailbox] = MailboxJobs(worker_id=worker_id, queued=before.queued)
        else:
            found[mailbox] = MailboxJobs(worker_id=before.worker_id, queued=True)
    return found
