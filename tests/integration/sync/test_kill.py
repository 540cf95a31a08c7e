"""`mailroom sync --once` killed with SIGKILL at random points, many times, then rerun:
the database ends equal to the server's content (IMAP and POP3), no duplicate, no loss."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from mailroom.app import App
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    message_count,
    seed,
)

KILLS = 4


def run_sync(app: App, *, kill_after: float | None) -> int | None:
    """Run the CLI in its own process; SIGKILL it after `kill_after` seconds (if still alive)."""
    env = dict(os.environ, MAILROOM_SECRET_KEY=app.settings.secret_key_b64 or "")
    argv = [sys.executable, "-c", "from mailroom.cli import main; main()"]
    proc = subprocess.Popen(
        [*argv, "--data-dir", str(app.settings.data_dir), "sync", "--once", "--batch-size", "50"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is None:
        return proc.wait(timeout=120)
    deadline = time.monotonic() + 60
    while proc.poll() is None and not syncing(app, proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the kill lands at a random point of the sync, not of the start-up
    time.sleep(kill_after)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return None


def syncing(app: App, pid: int) -> bool:
    """Whether the process `pid` holds the claim (it is past start-up, inside the sync)."""
    from sqlalchemy import select

    from mailroom.db.models import Mailbox

    with app.sessions() as session:
        owners = session.scalars(select(Mailbox.sync_owner)).all()
    return any(f":{pid}:" in (owner or "") for owner in owners)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_sigkill_at_random_points_then_rerun_equals_the_server(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], protocol: str
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 200)
    seed(dovecot, login, "Sent", 20, start=1000)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol=protocol)
    rng = random.Random(int(os.environ.get("MAILROOM_KILL_SEED", "3")))
    counts: list[int] = []
    for _ in range(KILLS):
        run_sync(sqlite_app, kill_after=rng.uniform(0.0, 1.5))
        counts.append(message_count(sqlite_app))
        if protocol == "imap":  # mail keeps arriving between the kills
            seed(dovecot, login, "INBOX", 3, start=2000 + len(counts) * 3)
    assert run_sync(sqlite_app, kill_after=None) == 0
    print(f"messages stored after each kill ({protocol}): {counts}")
    if protocol == "imap":
        assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX", "Sent"))
    else:  # POP3 sees INBOX only
        assert message_count(sqlite_app) == 200
        assert_db_pop3_matches(sqlite_app, box, 200)


def assert_db_pop3_matches(app: App, mailbox_id: int, expected: int) -> None:
    from sqlalchemy import select

    from mailroom.db.models import MessageCopy

    with app.sessions() as session:
        uidls = list(
            session.scalars(
                select(MessageCopy.server_id).where(
                    MessageCopy.mailbox_id == mailbox_id, MessageCopy.gone_at.is_(None)
                )
            )
        )
    assert len(uidls) == len(set(uidls)) == expected and None not in uidls
