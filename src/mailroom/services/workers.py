"""The PostgreSQL mode's workers: run one, start some beside `serve`, list them.

`mailroom worker` runs every background job through Procrastinate (jobs/); `mailroom
serve --workers N` starts N of them as child processes; `mailroom workers` lists the live
ones with their jobs and mailboxes. All three need PostgreSQL: on SQLite `serve` does the
work in-process and a worker would have no queue to read.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom.errors import BadInput, ConfigError

if TYPE_CHECKING:
    from mailroom.jobs.background import BackgroundTask
    from mailroom.jobs.chores import Chore

QUEUE_NAMES = ("sync", "chores")  # jobs.queue.QUEUES, without importing Procrastinate here


def require_postgres(app: App, *, what: str) -> None:
    """`ConfigError` unless the database is PostgreSQL."""
    if app.settings.is_sqlite:
        raise ConfigError(
            f"{what} needs PostgreSQL; this data dir uses the embedded SQLite database.",
            hint="Set MAILROOM_DATABASE_URL=postgresql+psycopg://USER@HOST/DB and run "
            "`mailroom init`; on SQLite, `mailroom serve` does every background job itself.",
        )


def run_worker(
    *, app: App, concurrency: int, queues: Sequence[str] | None, grace: float = 120.0
) -> None:
    """Run one worker until SIGTERM/SIGINT (jobs/worker.py)."""
    require_postgres(app, what="`mailroom worker`")
    unknown = [q for q in queues or () if q not in QUEUE_NAMES]
    if unknown:
        raise BadInput(
            f"Unknown queue {', '.join(map(repr, unknown))}.",
            hint=f"Queues: {', '.join(QUEUE_NAMES)} (default: both).",
        )
    if concurrency < 1:
        raise BadInput("--concurrency must be at least 1.", hint="Try --concurrency 4.")
    from mailroom.jobs.worker import run_worker as run

    run(
        app,
        concurrency=concurrency,
        queues=queues,
        grace=grace,
        chores=worker_chores(),
        background=worker_background(),
    )


def worker_chores() -> tuple[Chore, ...]:
    """Every chore serve runs in-process, run by the workers once per period: those of the
    layers below (`jobs.chores.BASE_CHORES`) and the services' own `Periodic` chores — add
    `Chore("name", ThatPeriodic)` here for each one `serve` starts (web/server.py)."""
    from mailroom.jobs.chores import BASE_CHORES, Chore
    from mailroom.services.oauth_notices import RevokedNotices
    from mailroom.services.task_reminders import TaskReminders

    return (
        *BASE_CHORES,
        Chore("revoked-notices", RevokedNotices),
        Chore("task-reminders", TaskReminders),
    )


def worker_background() -> tuple[BackgroundTask, ...]:
    """The long runs serve does in daemon threads on SQLite, as the workers' jobs on
    PostgreSQL (jobs.background): linking a record's stored mail, searching the server
    for it, running a rule on stored mail."""
    from mailroom.jobs.background import BackgroundTask
    from mailroom.services import record_links, stored_rules

    return (
        BackgroundTask(record_links.RELINK, record_links.relink_job),
        BackgroundTask(record_links.RETRO, record_links.retro_job),
        BackgroundTask(stored_rules.RULE_JOB, stored_rules.rule_job),
    )


@dataclass
class WorkerProcesses:
    """Worker processes started beside `serve` (`--workers N`)."""

    processes: list[subprocess.Popen[bytes]]

    def stop(self, timeout: float = 130.0) -> None:
        """SIGTERM each (they hand back their batch), wait, SIGKILL what is left."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_workers(*, app: App, count: int, concurrency: int = 4) -> WorkerProcesses:
    """Start `count` `mailroom worker` processes on this data dir (PostgreSQL only)."""
    if count < 0:
        raise BadInput("--workers must be 0 or more.", hint="Try --workers 2.")
    if count:
        require_postgres(app, what="`mailroom serve --workers`")
    argv = [sys.executable, "-c", "from mailroom.cli import main; main()"]
    if logging.getLogger().isEnabledFor(logging.INFO):
        argv.append("--verbose")  # serve -v: its workers log their jobs too
    argv += ["--data-dir", str(app.settings.data_dir), "worker"]
    argv += ["--concurrency", str(concurrency)]
    env = dict(os.environ, MAILROOM_DATABASE_URL=app.settings.database_url)
    return WorkerProcesses([subprocess.Popen(argv, env=env) for _ in range(count)])


def list_workers(*, session: Session, app: App) -> dict[str, Any]:
    """Live workers with their running jobs and mailboxes, and the queue depth, as JSON."""
    require_postgres(app, what="`mailroom workers`")
    from mailroom.jobs import status
    from mailroom.jobs.timing import load_timings

    workers = status.list_workers(session, stalled_after=load_timings().stalled_after)
    boxes = {j.mailbox_id for w in workers for j in w.jobs if j.mailbox_id is not None}
    owners = dict(
        session.execute(select(Mailbox.id, Mailbox.sync_owner).where(Mailbox.id.in_(boxes)))
        .tuples()
        .all()
    )
    return {
        "workers": [
            {
                "id": w.id,
                "last_heartbeat": w.last_heartbeat.isoformat(),
                "alive": w.alive,
                "watching": w.watching,  # host:pid of a worker running IDLE watchers
                "mailboxes": sorted(j.mailbox_id for j in w.jobs if j.mailbox_id is not None),
                "jobs": [
                    {
                        "id": j.id,
                        "task": j.task,
                        "queue": j.queue,
                        "mailbox_id": j.mailbox_id,
                        "attempts": j.attempts,
                        "claim": claim_process(owners.get(j.mailbox_id)) if j.mailbox_id else None,
                    }
                    for j in w.jobs
                ],
            }
            for w in workers
            if w.alive
        ],
        "queue_depth": status.queue_depth(session),
    }


def claim_process(owner: str | None) -> str | None:
    """`host:pid` of a claim (`host:pid:token…`), the process syncing the mailbox."""
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    return f"{host}:{rest.partition(':')[0]}"
