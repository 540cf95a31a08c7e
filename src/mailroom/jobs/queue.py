"""The Procrastinate app of a Mailroom database: its queues, locks and priorities.

Two queues a worker is told to serve (`mailroom worker --queues`): `sync` (one job per
mailbox sync) and `chores` (the serve's periodic chores, the long background runs), so
`mailroom worker --queues sync` can be scaled apart from the rest. The periodic tick has a
third queue, `tick`, served with `chores` but never by the worker's job slots: by the slot
reserved for it (tick_slot.py), so it never waits behind syncs.

A sync job carries `lock = queueing_lock = "mailbox:ID"`: Procrastinate never starts two
jobs with one lock at once (across every worker and machine), and refuses a second waiting
job with one queueing lock (`AlreadyEnqueued`), so a mailbox is queued at most once and
synced by at most one worker. "Sync now" defers at `HIGH` priority (or raises the waiting
job's priority to it); the periodic polls defer at `NORMAL`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import procrastinate
from procrastinate import exceptions
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mailroom.app import App
from mailroom.jobs.timing import JobTimings, load_timings

if TYPE_CHECKING:
    from mailroom.jobs.background import BackgroundTask
    from mailroom.jobs.chores import Chore

log = logging.getLogger(__name__)

SYNC_QUEUE = "sync"
CHORES_QUEUE = "chores"
QUEUES = (SYNC_QUEUE, CHORES_QUEUE)
TICK_QUEUE = "tick"  # not one of QUEUES: a worker serving `chores` serves it (tick_slot.py)
SYNC_TASK = "mailroom.sync_mailbox"
TICK_TASK = "mailroom.tick"
CHORE_TASK = "mailroom.chore"
NORMAL = 0
PUSH = 5  # an IDLE push: before the polls, after a "sync now"
HIGH = 10
TICK_PRIORITY = 20  # before anything else in the reserved slot's queue (only ticks today)


def mailbox_lock(mailbox_id: int) -> str:
    """The lock (and queueing lock) of a mailbox's sync jobs."""
    return f"mailbox:{mailbox_id}"


def conninfo(database_url: str) -> str:
    """psycopg's connection string for a SQLAlchemy URL (`postgresql+psycopg://…`)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def make_queue(
    app: App,
    *,
    timings: JobTimings | None = None,
    stopping: threading.Event | None = None,
    worker: bool = False,
    pool_size: int = 4,
    chores: Sequence[Chore] | None = None,
    background: Sequence[BackgroundTask] = (),
) -> procrastinate.App:
    """The Procrastinate app for `app`'s database, with Mailroom's tasks registered.

    `worker`: an async connector (a worker's event loop); else a synchronous one, for a
    process that only defers (serve, the CLI). `stopping` is set when the worker shuts down
    (its sync jobs then end after their batch and hand the mailbox back). `chores`: the
    periodic chores a worker runs (default `chores.BASE_CHORES`; a worker is given
    `services.workers.worker_chores()`). `background`: the long runs a worker runs
    (background.py; given `services.workers.worker_background()`).
    """
    from mailroom.jobs.chores import BASE_CHORES
    from mailroom.jobs.tasks import register

    connector: procrastinate.BaseConnector
    if worker:
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(app.settings.database_url), min_size=1, max_size=pool_size
        )
    else:
        connector = procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(app.settings.database_url), min_size=1, max_size=pool_size
        )
    queue = procrastinate.App(connector=connector)
    register(
        queue,
        app,
        timings or load_timings(),
        stopping or threading.Event(),
        BASE_CHORES if chores is None else chores,
        tuple(background),
    )
    return queue


def _sync_deferrer(
    queue: procrastinate.App, mailbox_id: int, priority: int
) -> procrastinate.jobs.JobDeferrer:
    """The sync task configured for one mailbox: its lock and queueing lock, a priority."""
    lock = mailbox_lock(mailbox_id)
    return queue.configure_task(
        SYNC_TASK, queue=SYNC_QUEUE, lock=lock, queueing_lock=lock, priority=priority
    )


def defer_sync(queue: procrastinate.App, *, mailbox_id: int, forced: bool, priority: int) -> bool:
    """Queue a sync of the mailbox (synchronously); False when one already waits."""
    try:
        _sync_deferrer(queue, mailbox_id, priority).defer(mailbox_id=mailbox_id, forced=forced)
    except exceptions.AlreadyEnqueued:
        return False
    return True


async def defer_sync_async(
    queue: procrastinate.App, *, mailbox_id: int, forced: bool, priority: int
) -> bool:
    """`defer_sync` from a worker's event loop."""
    try:
        await _sync_deferrer(queue, mailbox_id, priority).defer_async(
            mailbox_id=mailbox_id, forced=forced
        )
    except exceptions.AlreadyEnqueued:
        return False
    return True


async def defer_syncs_async(
    queue: procrastinate.App, due: Sequence[tuple[int, bool]], *, chunk: int = 500
) -> int:
    """Queue the syncs of many mailboxes ((mailbox id, forced) pairs; forced at `HIGH`,
    else `NORMAL`) in one INSERT per `chunk`, not one round trip each (at 1,000 mailboxes
    due at once that was a minute of the worker's event loop). A chunk that meets a
    queueing lock (a mailbox queued meanwhile) is deferred one by one. How many were
    queued."""
    queued = 0
    for start in range(0, len(due), chunk):
        part = due[start : start + chunk]
        jobs = [
            _sync_deferrer(queue, mailbox_id, HIGH if forced else NORMAL).make_new_job(
                mailbox_id=mailbox_id, forced=forced
            )
            for mailbox_id, forced in part
        ]
        try:
            await queue.job_manager.batch_defer_jobs_async(jobs=jobs)
            queued += len(jobs)
        except exceptions.AlreadyEnqueued:
            for mailbox_id, forced in part:
                priority = HIGH if forced else NORMAL
                queued += await defer_sync_async(
                    queue, mailbox_id=mailbox_id, forced=forced, priority=priority
                )
    return queued


def request_sync_now(app: App, *, mailbox_id: int) -> None:
    """ "Sync now" on PostgreSQL: queue the mailbox at `HIGH` priority, or raise the
    waiting job's priority (and make it forced) when one is already queued."""
    queue = make_queue(app, pool_size=1)
    with queue.open():
        if defer_sync(queue, mailbox_id=mailbox_id, forced=True, priority=HIGH):
            return
    with app.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE procrastinate_jobs SET priority = :high, "
                "args = jsonb_set(args, '{forced}', 'true') "
                "WHERE queueing_lock = :lock AND status = 'todo'"
            ),
            {"high": HIGH, "lock": mailbox_lock(mailbox_id)},
        )
