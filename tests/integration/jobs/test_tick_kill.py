"""A worker SIGKILLed in the middle of the tick (the periodic job that recovers stalled
jobs and queues what is due): the other workers go on ticking, queueing and recovering.

The tick holds no Procrastinate lock (jobs/tasks.py). With one, the killed worker's tick
job would stay `doing` and keep its lock until recovered, no later tick could start, and
recovery is what the tick does: nothing would ever be queued or recovered again. Here,
three real workers; the test holds the `mailboxes` table (ACCESS EXCLUSIVE) so the next
tick stops mid-way when it reads what is due, SIGKILLs the worker running that tick,
releases the table, and shows: other ticks run to the end while the killed one is still
`doing`; the killed tick is itself recovered by another worker's tick; a mailbox added
after the kill is queued and synced.
"""

from __future__ import annotations

import re
import secrets
import signal
import time

from sqlalchemy import text

from mailroom.app import App
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    message_count,
    seed,
)
from tests.integration.jobs.test_workers import Workers, synced_since, wait_for

# Dead after 6 s rather than 2: room to see other ticks end while the killed one is doing.
SLOW_STALL = {"MAILROOM_WORKER_HEARTBEAT": "1", "MAILROOM_WORKER_STALLED_AFTER": "6"}
TICK_ENDED = re.compile(r"Job mailroom\.tick\[(\d+)\]\(timestamp=\d+\) ended with status: Success")


def doing_ticks(app: App) -> list[int]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM procrastinate_jobs WHERE task_name = 'mailroom.tick' "
                "AND status = 'doing' ORDER BY id"
            )
        )
        return [int(i) for (i,) in rows]


def job_status(app: App, job_id: int) -> str | None:
    with app.engine.connect() as conn:
        found = conn.execute(
            text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        ).scalar()
        return None if found is None else str(found)


def waiting_on_a_lock(app: App) -> bool:
    """Whether a session of this database waits for a lock (the tick, on `mailboxes`)."""
    with app.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )


def test_a_worker_killed_mid_tick_stops_no_other_tick_and_its_tick_is_recovered(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 20)
    first_box = connect_mailbox(queue_app, dovecot, imap_user)
    for _ in range(3):
        workers.start(concurrency=2, timings=SLOW_STALL)
    wait_for(
        "synced the first mailbox",
        lambda: synced_since(queue_app, first_box, 0) and message_count(queue_app) == 20,
        workers,
    )

    holder = queue_app.engine.connect()
    held = holder.begin()
    holder.execute(text("LOCK TABLE mailboxes IN ACCESS EXCLUSIVE MODE"))
    stuck: list[int] = []
    try:

        def a_tick_is_stuck() -> bool:
            doing = doing_ticks(queue_app)
            if doing and waiting_on_a_lock(queue_app):
                stuck.append(doing[0])
                return True
            return False

        wait_for("saw a tick stopped mid-way", a_tick_is_stuck, workers)
        started = f"Starting job mailroom.tick[{stuck[0]}]"
        victim = next(p for p in workers.procs if started in workers.log(p))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        held.rollback()
        holder.close()
    killed_at = time.time()
    victim_job = stuck[0]
    survivors = [p for p in workers.procs if p is not victim]

    def survivors_log() -> str:
        return "\n".join(workers.log(p) for p in survivors)

    # Other ticks start and end while the killed worker's tick is still `doing`: no lock.
    def another_tick_ended_meanwhile() -> bool:
        ended = [int(k) for k in TICK_ENDED.findall(survivors_log()) if int(k) > victim_job]
        return bool(ended) and job_status(queue_app, victim_job) == "doing"

    wait_for(
        "saw another tick end while the killed one was doing",
        another_tick_ended_meanwhile,
        workers,
    )

    # The killed tick is recovered by another worker's tick: retried (then it runs and is
    # deleted), or marked failed when a tick already waits (one waits at a time).
    recovered = f"job {victim_job} (mailroom.tick) stalled: its worker is gone; retrying it"
    wait_for(
        "saw the killed tick recovered and no longer doing",
        lambda: (
            recovered in survivors_log() and job_status(queue_app, victim_job) in (None, "failed")
        ),
        workers,
    )

    # Queueing goes on: a mailbox added after the kill is queued by a tick and synced.
    other = (f"user-{secrets.token_hex(6)}", secrets.token_urlsafe(16))
    dovecot.add_user(*other)
    seed(dovecot, other[0], "INBOX", 15, start=500)
    second_box = connect_mailbox(queue_app, dovecot, other, company="Beta")
    wait_for(
        "synced the mailbox added after the kill",
        lambda: synced_since(queue_app, second_box, killed_at),
        workers,
    )
    assert victim.poll() is not None and all(p.poll() is None for p in survivors)
    assert_db_matches_server(queue_app, dovecot, other[0], second_box, ("INBOX",))
    assert message_count(queue_app) == 35
