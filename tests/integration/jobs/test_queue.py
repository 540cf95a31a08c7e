"""The job queue on the real PostgreSQL, without worker processes: "sync now" queues a
mailbox once at high priority, the tick's "what is due" skips running mailboxes and
waits for the health backoff, and stall recovery releases only the dead job's claim."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.jobs.queue import HIGH, NORMAL, defer_sync, defer_syncs_async, make_queue
from mailroom.jobs.recovery import recover_stalled
from mailroom.jobs.tasks import due_now
from mailroom.jobs.timing import JobTimings
from mailroom.services.mailboxes import list_mailbox_json, sync_now
from tests.helpers.sync_support import setup_company


@pytest.fixture
def queue_app(pg_app: App) -> App:
    with pg_app.engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE procrastinate_jobs, procrastinate_events, "
                "procrastinate_periodic_defers, procrastinate_workers RESTART IDENTITY CASCADE"
            )
        )
    return pg_app


def sync_jobs(app: App) -> list[tuple[int, str, int, bool]]:
    """(mailbox id, status, priority, forced) of every sync job."""
    with app.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT (args->>'mailbox_id')::int, status, priority, (args->>'forced')::bool "
                "FROM procrastinate_jobs WHERE task_name = 'mailroom.sync_mailbox' ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_sync_now_queues_the_mailbox_once_at_high_priority_and_the_json_shows_it(
    queue_app: App,
) -> None:
    first, second = setup_company(queue_app, mailbox_users=2)
    queue = make_queue(queue_app, pool_size=1)
    with queue.open():
        assert defer_sync(queue, mailbox_id=second, forced=False, priority=NORMAL)
    for _ in range(2):  # asked twice: still one job
        with queue_app.sessions() as session:
            assert sync_now(session=session, app=queue_app, mailbox_id=first, here=True)
    with queue_app.sessions() as session:  # a poll already waits: raised, not duplicated
        sync_now(session=session, app=queue_app, mailbox_id=second, here=False)
    assert sync_jobs(queue_app) == [(second, "todo", HIGH, True), (first, "todo", HIGH, True)]
    with queue_app.sessions() as session:
        shown = {m["id"]: m for m in list_mailbox_json(session=session)}
    assert shown[first]["queued"] and shown[second]["queued"]
    assert shown[first]["queue_depth"] == 2
    assert shown[first]["worker"] is None and shown[first]["worker_id"] is None


def test_what_is_due_skips_a_running_mailbox_and_waits_for_the_backoff(queue_app: App) -> None:
    running, backing_off, fresh = setup_company(queue_app, mailbox_users=3)
    with transaction(queue_app.sessions) as session:
        row = session.get(Mailbox, backing_off)
        assert row is not None
        row.status = "error"
        row.last_attempt_at = datetime.now(UTC)
        row.next_attempt_at = datetime.now(UTC) + timedelta(minutes=5)
    with queue_app.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status) "
                "VALUES ('sync', 'mailroom.sync_mailbox', :lock, :args, 'doing')"
            ),
            {"lock": f"mailbox:{running}", "args": f'{{"mailbox_id": {running}}}'},
        )
    timings = JobTimings(poll_interval=300)
    assert due_now(queue_app, timings) == [(fresh, False)]
    with transaction(queue_app.sessions) as session:  # the backoff has elapsed
        row = session.get(Mailbox, backing_off)
        assert row is not None
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert sorted(due_now(queue_app, timings)) == [(backing_off, False), (fresh, False)]


def test_a_tick_queues_every_due_mailbox_once_in_a_batch_and_skips_the_queued(
    queue_app: App,
) -> None:
    boxes = setup_company(queue_app, mailbox_users=12)
    asked, polled = boxes[0], boxes[1]
    with transaction(queue_app.sessions) as session:
        row = session.get(Mailbox, asked)
        assert row is not None
        row.sync_requested_at = datetime.now(UTC)
    queue = make_queue(queue_app, pool_size=1)
    timings = JobTimings(poll_interval=300)
    with queue.open():
        assert defer_sync(queue, mailbox_id=polled, forced=False, priority=NORMAL)
        due = due_now(queue_app, timings)
        assert polled not in {box for box, _ in due}, "a queued mailbox is not due again"
        assert asyncio.run(_defer(queue_app, due, chunk=5)) == len(boxes) - 1
        assert due_now(queue_app, timings) == [], "every due mailbox is queued now"
        # a mailbox queued between "what is due" and the batch: that chunk goes one by one
        assert asyncio.run(_defer(queue_app, [(asked, True), (polled, False)], chunk=5)) == 0
    jobs = sync_jobs(queue_app)
    assert sorted(box for box, *_ in jobs) == sorted(boxes), "each mailbox once"
    assert {(box, priority, forced) for box, _, priority, forced in jobs if box == asked} == {
        (asked, HIGH, True)
    }


async def _defer(app: App, due: list[tuple[int, bool]], *, chunk: int) -> int:
    queue = make_queue(app, pool_size=1, worker=True)  # a worker's asynchronous connector
    async with queue.open_async():
        return await defer_syncs_async(queue, due, chunk=chunk)


def test_recovery_retries_a_dead_workers_job_and_releases_only_its_claim(queue_app: App) -> None:
    dead_box, live_box = setup_company(queue_app, mailbox_users=2)
    with queue_app.engine.begin() as conn:
        dead = conn.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        ).scalar_one()
        live = conn.execute(
            text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
        ).scalar_one()
        job_ids = {}
        for box, worker in ((dead_box, dead), (live_box, live)):
            job_ids[box] = conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs "
                    "(queue_name, task_name, lock, args, status, worker_id) "
                    "VALUES ('sync', 'mailroom.sync_mailbox', :lock, :args, 'doing', :worker) "
                    "RETURNING id"
                ),
                {"lock": f"mailbox:{box}", "args": f'{{"mailbox_id": {box}}}', "worker": worker},
            ).scalar_one()
    with transaction(queue_app.sessions) as session:
        for box in (dead_box, live_box):
            row = session.get(Mailbox, box)
            assert row is not None
            row.status = "syncing"
            row.sync_owner = f"elsewhere.example:4242:ab12:job{job_ids[box]}"
            row.heartbeat_at = datetime.now(UTC)

    async def recover() -> int:
        queue = make_queue(queue_app, worker=True, pool_size=2)
        async with queue.open_async():
            return await recover_stalled(queue, queue_app, stalled_after=30)

    assert asyncio.run(recover()) == 1
    statuses = {box: status for box, status, _, _ in sync_jobs(queue_app)}
    assert statuses == {dead_box: "todo", live_box: "doing"}
    with queue_app.sessions() as session:
        dead_row, live_row = session.get(Mailbox, dead_box), session.get(Mailbox, live_box)
        assert dead_row is not None and live_row is not None
        assert dead_row.sync_owner is None  # the retried job may claim it at once
        assert live_row.sync_owner == f"elsewhere.example:4242:ab12:job{job_ids[live_box]}"
