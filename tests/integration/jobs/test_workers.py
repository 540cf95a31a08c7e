"""`mailroom worker` processes on PostgreSQL against the real Dovecot: a worker killed
mid-sync is replaced by another (its stalled job retried from the committed cursor), a
worker stopped with SIGTERM hands its mailbox back, periodic jobs run once across all
workers, and every message ends stored exactly once.

The intervals are shortened through the environment (jobs/timing.py): heartbeat 0.5 s,
dead after 2 s, tick every second, batches of 10 messages.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    message_count,
    seed,
)

FAST = {
    "MAILROOM_WORKER_HEARTBEAT": "0.5",
    "MAILROOM_WORKER_STALLED_AFTER": "2",
    "MAILROOM_JOBS_TICK": "1",
    "MAILROOM_SYNC_BATCH": "10",
    "MAILROOM_POLL_INTERVAL": "3600",
}
WAIT = 120.0  # a bound on waiting for a state, never an assertion on speed


class Workers:
    """`mailroom worker` subprocesses on the app's database, each logging to a file."""

    def __init__(self, app: App, logs: Path) -> None:
        self.app = app
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, *, concurrency: int = 2, timings: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = dict(
            os.environ,
            MAILROOM_SECRET_KEY=self.app.settings.secret_key_b64 or "",
            MAILROOM_DATABASE_URL=self.app.settings.database_url,
            **{**FAST, **(timings or {})},
        )
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        argv = [sys.executable, "-c", "from mailroom.cli import main; main()", "-v"]
        argv += ["--data-dir", str(self.app.settings.data_dir), "worker"]
        argv += ["--concurrency", str(concurrency)]
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"worker-{self.procs.index(proc)}.log").read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(self.log(p) for p in self.procs)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(what: str, check: Callable[[], bool], pool: Workers, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never {what}; worker logs:\n{pool.all_logs()[-6000:]}")
        time.sleep(0.05)


def mailbox(app: App, mailbox_id: int) -> Mailbox:
    with app.sessions() as session:
        row = session.get(Mailbox, mailbox_id)
        assert row is not None
        return row


def running_syncs(app: App, mailbox_id: int) -> int:
    """Sync jobs of the mailbox that a worker is running now."""
    with app.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' "
                    "AND task_name = 'mailroom.sync_mailbox' AND args->>'mailbox_id' = :id"
                ),
                {"id": str(mailbox_id)},
            ).scalar_one()
        )


def synced_since(app: App, mailbox_id: int, moment: float) -> bool:
    row = mailbox(app, mailbox_id)
    done = row.last_success_at
    return row.status == "ok" and done is not None and done.timestamp() > moment


def test_a_worker_killed_mid_sync_is_replaced_and_every_message_is_stored_once(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 400)
    seed(dovecot, login, "Sent", 30, start=1000)
    box = connect_mailbox(queue_app, dovecot, imap_user)
    first, second = workers.start(), workers.start()
    pids = {first.pid: first, second.pid: second}

    def holder() -> int | None:  # the worker process holding the mailbox's claim, mid-sync
        owner = mailbox(queue_app, box).sync_owner or ""
        pid = int(owner.split(":")[1]) if owner.count(":") >= 2 else None
        return pid if pid in pids and 50 <= message_count(queue_app) < 400 else None

    wait_for("saw a worker mid-sync", lambda: holder() is not None, workers)
    victim = pids[holder() or 0]
    stored_at_kill = message_count(queue_app)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.time()
    survivor = second if victim is first else first

    concurrent: list[int] = []

    def finished() -> bool:
        concurrent.append(running_syncs(queue_app, box))
        return synced_since(queue_app, box, killed_at)

    wait_for("finished the sync on the surviving worker", finished, workers)
    recovered_in = time.time() - killed_at
    print(f"killed with {stored_at_kill} of 430 stored; finished {recovered_in:.1f} s later")
    assert 0 < stored_at_kill < 430
    assert max(concurrent) <= 1  # never two sync jobs of one mailbox at once
    assert "stalled: its worker is gone" in workers.log(survivor)
    assert survivor.poll() is None
    assert_db_matches_server(queue_app, dovecot, login, box, ("INBOX", "Sent"))
    assert message_count(queue_app) == 430


def test_sigterm_hands_the_mailbox_back_and_the_next_worker_finishes_it(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 300)
    box = connect_mailbox(queue_app, dovecot, imap_user)
    only = workers.start()
    wait_for(
        "saw the worker mid-sync",
        lambda: (
            0 < message_count(queue_app) < 300
            and f":{only.pid}:" in (mailbox(queue_app, box).sync_owner or "")
        ),
        workers,
    )
    only.send_signal(signal.SIGTERM)
    assert only.wait(60) == 0
    stopped = mailbox(queue_app, box)
    assert stopped.sync_owner is None and stopped.status != "syncing"  # released, not stalled
    with queue_app.engine.connect() as conn:
        queued = conn.execute(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' "
                "AND task_name = 'mailroom.sync_mailbox'"
            )
        ).scalar_one()
    assert queued == 1  # handed back: queued again for the next worker
    assert message_count(queue_app) < 300
    moment = time.time()
    workers.start()
    wait_for("finished on the next worker", lambda: synced_since(queue_app, box, moment), workers)
    assert_db_matches_server(queue_app, dovecot, login, box, ("INBOX",))


TICK = re.compile(r"Job mailroom\.tick\[\d+\]\(timestamp=(\d+)\) ended with status: Success")


def test_periodic_jobs_run_once_across_three_workers(queue_app: App, workers: Workers) -> None:
    for _ in range(3):
        workers.start(concurrency=1)
    wait_for(
        "ran a dozen ticks",
        lambda: len(TICK.findall(workers.all_logs())) >= 12,
        workers,
    )
    workers.stop_all()
    runs = Counter(TICK.findall(workers.all_logs()))
    per_worker = [len(TICK.findall(workers.log(p))) for p in workers.procs]
    print(f"ticks run per worker: {per_worker}")
    assert runs and max(runs.values()) == 1  # each period's tick ran on exactly one worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_on_postgresql_never_syncs_itself_its_workers_do(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], tmp_path: Path
) -> None:
    seed(dovecot, imap_user[0], "INBOX", 20)
    box = connect_mailbox(queue_app, dovecot, imap_user)
    env = dict(
        os.environ,
        MAILROOM_SECRET_KEY=queue_app.settings.secret_key_b64 or "",
        MAILROOM_DATABASE_URL=queue_app.settings.database_url,
        **FAST,
    )
    cli = [sys.executable, "-c", "from mailroom.cli import main; main()"]
    cli += ["--data-dir", str(queue_app.settings.data_dir)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*cli, "-v", "serve", "--workers", "1", "--port", str(free_port()), "--smtp-port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WAIT
        while not synced_since(queue_app, box, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        listed = subprocess.run(
            [*cli, "workers", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=90)
    output = log.read_text(errors="replace")
    assert code == 0, output[-4000:]
    # the one sync of the mailbox ran as a worker's job and found every message new:
    # serve did not sync it first (its job would then have found nothing new)
    assert f"Result: mailbox {box}: 20 new messages" in output, output[-4000:]
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert len(shown["workers"]) == 1 and shown["workers"][0]["alive"]
    with queue_app.engine.connect() as conn:  # the worker unregistered when serve stopped it
        assert conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one() == 0


WATCHING = re.compile(r"worker (\d+) \([^:]+:(\d+)\): watching (\d+) folders")


def push_until_stored(
    app: App, dovecot: DovecotServer, login: str, pool: Workers, *, start: int
) -> int:
    """Append a message every 2 s until the stored count grows (no poll is due for an
    hour, so only an IDLE push brings it; a push sent before a watcher's IDLE began is
    covered by the next one); how many were appended."""
    stored, appended, last = message_count(app), 0, 0.0
    deadline = time.monotonic() + WAIT
    while message_count(app) == stored:
        if time.monotonic() > deadline:
            pytest.fail(f"no push arrived; worker logs:\n{pool.all_logs()[-6000:]}")
        if time.monotonic() > last + 2:
            seed(dovecot, login, "INBOX", 1, start=start + appended)
            appended, last = appended + 1, time.monotonic()
        time.sleep(0.05)
    return appended


def test_idle_pushes_reach_a_worker_and_a_killed_watchers_mailboxes_move_to_another(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 3)
    box = connect_mailbox(queue_app, dovecot, imap_user)
    procs = {p.pid: p for p in (workers.start(concurrency=1), workers.start(concurrency=1))}
    wait_for("synced once", lambda: synced_since(queue_app, box, 0), workers)
    push_until_stored(queue_app, dovecot, login, workers, start=100)

    def watcher() -> subprocess.Popen[bytes] | None:  # the one process watching it now
        latest = {p: WATCHING.findall(workers.log(p))[-1:] for p in procs.values()}
        watching = [p for p, found in latest.items() if found and int(found[0][2]) > 0]
        return watching[0] if len(watching) == 1 else None

    wait_for(
        "saw one worker watch the mailbox, and no sync running",
        lambda: watcher() is not None and running_syncs(queue_app, box) == 0,
        workers,
    )
    victim = watcher()
    assert victim is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    (survivor,) = [p for p in procs.values() if p is not victim]
    before = len(workers.log(survivor))
    push_until_stored(queue_app, dovecot, login, workers, start=200)
    # the survivor took the dead watcher's mailbox over (it watched nothing before)
    assert re.search(r"watching [1-9]\d* folders", workers.log(survivor)[before:])
    wait_for("synced the last push", lambda: mailbox(queue_app, box).status == "ok", workers)
    assert_db_matches_server(queue_app, dovecot, login, box, ("INBOX", "Sent"))
