"""The tick (stall recovery, due polls) has a slot of its own in every worker process: a
worker whose every job slot is held by a sync that does not end still recovers the
stalled job of a killed worker (jobs/tick_slot.py).

Before the reserved slot, the tick was a job like the syncs: with every slot busy it
waited for a sync to end, and a killed worker's mailbox waited with it. Here the "long
sync" is made deterministic: the test holds mailbox A's row lock, so A's sync (the only
slot of the surviving worker) blocks at its next batch commit for as long as the test
likes. Meanwhile the other worker, syncing mailbox B, is SIGKILLed; the survivor must
retry B's stalled job while A's sync is still blocked. Then the lock is released and both
mailboxes end stored once.
"""

from __future__ import annotations

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
from tests.integration.jobs.test_tick_kill import job_status, waiting_on_a_lock
from tests.integration.jobs.test_workers import Workers, mailbox, synced_since, wait_for


def sync_job(app: App, mailbox_id: int) -> int | None:
    """The id of the mailbox's sync job a worker is running, if any."""
    with app.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT id FROM procrastinate_jobs WHERE status = 'doing' "
                "AND task_name = 'mailroom.sync_mailbox' AND args->>'mailbox_id' = :id"
            ),
            {"id": str(mailbox_id)},
        ).scalar()
        return None if found is None else int(found)


def held_by(app: App, mailbox_id: int, pid: int) -> bool:
    """Whether the process `pid` holds the mailbox's sync claim (mid-sync)."""
    return f":{pid}:" in (mailbox(app, mailbox_id).sync_owner or "")


def test_a_worker_whose_every_slot_syncs_still_recovers_a_killed_workers_job(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login_a = imap_user[0]
    seed(dovecot, login_a, "INBOX", 200)
    box_a = connect_mailbox(queue_app, dovecot, imap_user)
    survivor = workers.start(concurrency=1)
    wait_for(
        "saw the survivor mid-sync of A",
        lambda: held_by(queue_app, box_a, survivor.pid) and message_count(queue_app) > 0,
        workers,
    )

    holder = queue_app.engine.connect()
    held = holder.begin()
    # A's next batch commit waits for this row lock: the survivor's only slot stays busy
    holder.execute(text("SELECT id FROM mailboxes WHERE id = :id FOR UPDATE"), {"id": box_a})
    try:
        wait_for("saw A's sync blocked", lambda: waiting_on_a_lock(queue_app), workers)
        job_a = sync_job(queue_app, box_a)
        assert job_a is not None

        user_b = (f"user-{secrets.token_hex(6)}", secrets.token_urlsafe(16))
        dovecot.add_user(*user_b)
        seed(dovecot, user_b[0], "INBOX", 400, start=1000)
        box_b = connect_mailbox(queue_app, dovecot, user_b, company="Beta")
        victim = workers.start(concurrency=1)
        wait_for(
            "saw the victim mid-sync of B",
            lambda: held_by(queue_app, box_b, victim.pid) and sync_job(queue_app, box_b),
            workers,
        )
        job_b = sync_job(queue_app, box_b)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)

        # The survivor's tick retries B's stalled job although its only slot is still
        # busy with A's sync (still `doing`, still blocked on the row lock).
        retried = f"job {job_b} (sync of mailbox {box_b}) stalled: its worker is gone"
        wait_for(
            "saw B's stalled job retried while A's sync held the only slot",
            lambda: retried in workers.log(survivor),
            workers,
        )
        assert job_status(queue_app, job_a) == "doing" and waiting_on_a_lock(queue_app)
        assert job_status(queue_app, job_b) == "todo"  # back in the queue, same job
    finally:
        held.rollback()
        holder.close()

    released_at = time.time()
    wait_for("finished A", lambda: synced_since(queue_app, box_a, 0), workers)
    wait_for("finished B", lambda: synced_since(queue_app, box_b, released_at), workers)
    assert survivor.poll() is None
    assert_db_matches_server(queue_app, dovecot, login_a, box_a, ("INBOX",))
    assert_db_matches_server(queue_app, dovecot, user_b[0], box_b, ("INBOX",))
    assert message_count(queue_app) == 600
