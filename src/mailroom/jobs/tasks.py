"""Mailroom's Procrastinate tasks: thin, each calls what `mailroom serve` calls in-process.

- `mailroom.sync_mailbox(mailbox_id, forced)`: `sync.engine.sync_mailbox` (claim, batches,
  health: the same rules and backoff as the in-process scheduler), then the body fill the
  scheduler runs after a sync. Its claim names the job (`…:job<ID>`, recovery.py). On
  shutdown the sync ends after its batch and the mailbox is queued again at once, for the
  next worker (hand-back).
- `mailroom.tick` (every `MAILROOM_JOBS_TICK` s, one per timestamp, no lock — a dead
  worker's tick must not block the recovery of itself; on the `tick` queue, run by each
  worker's reserved slot, tick_slot.py): retry the jobs of dead workers (recovery.py),
  then queue every mailbox that `sync.scheduler.mailboxes_due` says is due and has no
  running job.
- `mailroom.chore(name)`: one `tick()` of the serve's chore `name` (chores.py), per period.
- `mailroom.<name>` of each long run (background.py): relinks, server searches, rule runs.

A periodic task is deferred by every worker's deferrer, but Procrastinate keeps one job
per task and timestamp (`procrastinate_periodic_defers`): once across all workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate import JobContext
from sqlalchemy import text

from mailroom.app import App
from mailroom.errors import MailroomError
from mailroom.ingest import bodies
from mailroom.jobs.background import BackgroundTask, register_background
from mailroom.jobs.chores import Chore, chore
from mailroom.jobs.queue import (
    CHORE_TASK,
    CHORES_QUEUE,
    HIGH,
    SYNC_QUEUE,
    SYNC_TASK,
    TICK_PRIORITY,
    TICK_QUEUE,
    TICK_TASK,
    defer_sync,
    defer_syncs_async,
)
from mailroom.jobs.recovery import job_owner_suffix, recover_stalled
from mailroom.jobs.timing import JobTimings
from mailroom.sync import claims, engine
from mailroom.sync.scheduler import mailboxes_due

log = logging.getLogger(__name__)


def register(
    queue: procrastinate.App,
    app: App,
    timings: JobTimings,
    stopping: threading.Event,
    chores: Sequence[Chore],
    background: tuple[BackgroundTask, ...] = (),
) -> None:
    """Register the tasks above on `queue`, bound to `app`, with `chores` as periodic and
    the long runs `background` (background.py)."""
    register_background(queue, app, background, stopping)

    @queue.task(name=SYNC_TASK, queue=SYNC_QUEUE, pass_context=True)
    def sync_mailbox_job(context: JobContext, mailbox_id: int, forced: bool = False) -> str:
        return run_sync(queue, app, context, mailbox_id, forced, timings, stopping)

    # No lock on the tick: it is what recovers stalled jobs, so a tick whose worker died
    # holding a lock would block every later tick, and with them all recovery. Periodic
    # defers are one per timestamp; overlapping ticks queue a mailbox at most once
    # (queueing_lock) and tolerate each other's retries (jobs.recovery). A queueing lock
    # (todo jobs only: a dead worker's `doing` tick blocks nothing) keeps one tick
    # waiting, not one per second, if no worker serves the tick queue for a while. The
    # tick has its own queue, run by each worker's reserved slot (tick_slot.py), never
    # by its job slots: with every slot syncing it would wait for a sync to end.
    @queue.periodic(
        cron=timings.tick_cron, periodic_id="tick", queueing_lock="tick", priority=TICK_PRIORITY
    )
    @queue.task(name=TICK_TASK, queue=TICK_QUEUE, pass_context=True)
    async def tick_job(context: JobContext, timestamp: int) -> str:
        return await run_tick(queue, app, timings)

    @queue.task(name=CHORE_TASK, queue=CHORES_QUEUE, pass_context=True)
    def chore_job(context: JobContext, timestamp: int, name: str) -> str:
        chore(name, chores).make(app).tick()
        return name

    for each in chores:
        queue.periodic(
            cron=each.cron(app),
            periodic_id=each.name,
            lock=f"chore:{each.name}",
            queueing_lock=f"chore:{each.name}",  # one waiting, however long slots are busy
            task_kwargs={"name": each.name},
        )(chore_job)


def run_sync(
    queue: procrastinate.App,
    app: App,
    context: JobContext,
    mailbox_id: int,
    forced: bool,
    timings: JobTimings,
    stopping: threading.Event,
) -> str:
    """The body of a sync job (runs in a worker thread); a one-line outcome for the log."""
    assert context.job.id is not None
    owner = claims.new_owner() + job_owner_suffix(context.job.id)
    try:
        report = engine.sync_mailbox(
            app,
            mailbox_id,
            batch_size=timings.batch_size,
            stop=stopping,
            force=forced,
            owner=owner,
        )
    except MailroomError as exc:  # e.g. the mailbox was deleted after the job was queued
        return f"mailbox {mailbox_id}: {exc.message}"
    if report.skipped:
        return f"mailbox {mailbox_id}: skipped ({report.skipped})"
    if stopping.is_set():  # hand-back: the next worker goes on from the committed cursor
        defer_sync(queue, mailbox_id=mailbox_id, forced=forced, priority=HIGH)
        return f"mailbox {mailbox_id}: stopped after a batch, queued again"
    bodies.fill_in_background(app, stop=stopping)  # headers-only mail, as the scheduler does
    if report.error is not None:
        return f"mailbox {mailbox_id}: {report.error.message}"
    return f"mailbox {mailbox_id}: {report.messages} new messages"


async def run_tick(queue: procrastinate.App, app: App, timings: JobTimings) -> str:
    """Recover stalled jobs, then queue the due mailboxes; a one-line outcome."""
    recovered = await recover_stalled(queue, app, stalled_after=timings.stalled_after)
    due = await asyncio.to_thread(due_now, app, timings)
    queued = await defer_syncs_async(queue, due)
    return f"{recovered} stalled jobs retried, {queued} syncs queued"


def due_now(app: App, timings: JobTimings) -> list[tuple[int, bool]]:
    """`mailboxes_due`, less the mailboxes whose sync job is queued or running: deferring
    those again would only meet their queueing lock (at 1,000 mailboxes, a thousand
    refused defers a tick kept the worker's event loop busy for a minute)."""
    with app.sessions() as session:
        running = busy_mailboxes(session)
        return mailboxes_due(
            session,
            now=datetime.now(UTC),
            interval=timings.poll_interval,
            running=running,
        )


def busy_mailboxes(session: Any) -> set[int]:
    """Mailbox ids with a sync job waiting (`todo`) or in progress (`doing`)."""
    rows = session.execute(
        text(
            "SELECT args->>'mailbox_id' FROM procrastinate_jobs "
            "WHERE status IN ('todo', 'doing') AND task_name = :task"
        ),
        {"task": SYNC_TASK},
    )
    return {int(value) for (value,) in rows if value is not None}
