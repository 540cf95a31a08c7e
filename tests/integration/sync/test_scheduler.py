"""The scheduler of `mailroom serve`: IDLE push, `sync --now`, kicks, stalls, shutdown.

Timing is measured and printed (IDLE latency), never asserted: a wait below only bounds
how long a test may hang when the behaviour is broken.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Mailbox, Message
from mailroom.sync import engine
from mailroom.sync.connect import open_source
from mailroom.sync.engine import AnySource, StageTimeout, SyncReport, sync_mailbox
from mailroom.sync.idle import IdleHub, watcher_opener
from mailroom.sync.scheduler import PollScheduler
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.fault_proxy import FaultProxy
from tests.helpers.mailbox_state import run_cli
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    health,
    message_count,
    seed,
    through,
)


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def has_subject(app: App, subject: str) -> bool:
    with app.sessions() as session:
        return session.scalar(select(Message.id).where(Message.subject == subject)) is not None


@pytest.fixture
def scheduler_factory(sqlite_app: App) -> Iterator[Callable[..., PollScheduler]]:
    made: list[PollScheduler] = []

    def make(**kw: object) -> PollScheduler:
        scheduler = PollScheduler(sqlite_app, **{"interval": 3600, "tick": 0.2, **kw})  # type: ignore[arg-type]
        made.append(scheduler)
        scheduler.start()
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()


def test_idle_brings_new_mail_in_within_seconds_and_reports_the_latency(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    scheduler_factory: Callable[..., PollScheduler],
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 2)
    box = connect_mailbox(sqlite_app, dovecot, imap_user)
    assert sync_mailbox(sqlite_app, box).error is None
    scheduler = scheduler_factory()  # polls only once an hour: only IDLE can be this quick
    assert wait_for(lambda: len(scheduler._idle.watchers) == 2 if scheduler._idle else False)
    time.sleep(0.5)  # let both watchers enter IDLE
    latencies = []
    for n in range(5):
        subject = f"Pushed {n}"
        folder = "INBOX" if n % 2 == 0 else "Sent"
        start = time.monotonic()
        dovecot.append(login, folder, build_message(sender="jo@client.example", subject=subject))
        assert wait_for(lambda s=subject: has_subject(sqlite_app, s)), subject
        latencies.append(time.monotonic() - start)
    print(
        f"IDLE latency over {len(latencies)} messages: median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"
    )
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX", "Sent"))


def test_sync_now_reaches_a_running_scheduler_without_a_restart(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    scheduler_factory: Callable[..., PollScheduler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login = imap_user[0]
    dovecot.create_folder(login, "Projects")
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("Projects",))
    scheduler_factory(idle=False)
    assert wait_for(lambda: health(sqlite_app, box).status == "ok")
    dovecot.append(login, "Projects", build_message(sender="jo@client.example", subject="Now"))
    time.sleep(1)
    assert not has_subject(sqlite_app, "Now"), "no poll is due for an hour"
    assert run_cli(sqlite_app, monkeypatch, "sync", "--now", str(box)) == 0
    assert wait_for(lambda: has_subject(sqlite_app, "Now"))
    assert health(sqlite_app, box).sync_requested_at is None


def test_idle_survives_a_kick_and_is_renewed_before_the_server_timeout(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    box = connect_mailbox(sqlite_app, dovecot, imap_user)
    changes: list[int] = []
    hub = IdleHub(on_change=changes.append, refresh=0.6)  # 0.6 s stands in for 25 minutes
    watched = hub.watch((box, "INBOX"), watcher_opener(sqlite_app, box))
    try:
        assert wait_for(lambda: watched.cycles >= 3), "IDLE is re-issued after each refresh"
        dovecot.doveadm("kick", login)
        assert wait_for(lambda: len(changes) >= 1), "a reconnect counts as a change"
        before = len(changes)
        cycles = watched.cycles
        assert wait_for(lambda: watched.cycles > cycles)
        dovecot.append(login, "INBOX", build_message(sender="jo@client.example"))
        assert wait_for(lambda: len(changes) > before), "the push after the kick arrives"
    finally:
        hub.stop()
    assert watched.source is None, "stopping logs out"


def test_one_hub_watches_many_folders_and_each_push_names_its_mailbox(
    sqlite_app: App, dovecot: DovecotServer
) -> None:
    users = [(f"hub-{secrets.token_hex(4)}", secrets.token_urlsafe(12)) for _ in range(6)]
    for login, password in users:
        dovecot.add_user(login, password)
    boxes = [
        connect_mailbox(sqlite_app, dovecot, user, company=f"Hub{n}")
        for n, user in enumerate(users)
    ]
    changes: list[int] = []
    hub = IdleHub(on_change=changes.append, pool_size=2)
    try:
        for box in boxes:
            hub.watch((box, "INBOX"), watcher_opener(sqlite_app, box))
        assert wait_for(lambda: all(w.cycles >= 1 for w in hub.folders.values()))
        assert changes == [], "a first connect is not a change"
        for index in (4, 1):
            dovecot.append(users[index][0], "INBOX", build_message(sender="jo@client.example"))
            assert wait_for(lambda index=index: boxes[index] in changes)
        assert set(changes) == {boxes[4], boxes[1]}
        hub.unwatch((boxes[4], "INBOX"))
        assert (boxes[4], "INBOX") not in hub.folders
    finally:
        hub.stop()


def test_a_stalled_sync_is_cut_and_reported_then_resumes(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    scheduler_factory: Callable[..., PollScheduler],
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 30)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    proxy = FaultProxy(dovecot.host, dovecot.imap_port)
    try:
        through(sqlite_app, box, proxy.port)
        proxy.stall_after(b"BODY[] {")  # the server "hangs" in the middle of a FETCH
        scheduler_factory(idle=False, stage_timeout=timedelta(seconds=1))
        assert wait_for(lambda: health(sqlite_app, box).error_kind == "stalled")
        proxy.resume()
    finally:
        proxy.close()
    with sqlite_app.sessions() as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None and mailbox.status == "error"
    through(sqlite_app, box, dovecot.imap_port)
    assert sync_mailbox(sqlite_app, box).error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))


def test_graceful_shutdown_mid_sync_leaves_consistent_cursors(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    scheduler_factory: Callable[..., PollScheduler],
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 200)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    scheduler = scheduler_factory(idle=False, batch_size=10)
    assert wait_for(lambda: message_count(sqlite_app) >= 10)
    scheduler.stop()
    stored = message_count(sqlite_app)
    mailbox = health(sqlite_app, box)
    assert mailbox.status != "syncing" and mailbox.sync_owner is None
    assert stored == mailbox.progress_done, "every committed batch moved its cursor"
    assert sync_mailbox(sqlite_app, box).error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))


def test_a_sync_aborted_while_its_connection_opens_is_cut_once_it_is_open(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    """The watchdog aborts a sync once; when its stage timeout passed while the connection
    was still being opened (a slow login on a busy machine), there was nothing to cut yet,
    and the sync then hung in its FETCH until the read deadline (60 s)."""
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 30)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    proxy = FaultProxy(dovecot.host, dovecot.imap_port)
    opening, opened = threading.Event(), threading.Event()
    reports: list[SyncReport] = []

    def slow_opener(mailbox: Mailbox, app: App) -> AnySource:
        opening.set()
        opened.wait(30)  # the watchdog's abort comes meanwhile
        return open_source(mailbox, app)

    try:
        through(sqlite_app, box, proxy.port)
        proxy.stall_after(b"BODY[] {")  # then the server "hangs" in the middle of a FETCH
        worker = threading.Thread(
            target=lambda: reports.append(sync_mailbox(sqlite_app, box, opener=slow_opener))
        )
        worker.start()
        assert opening.wait(30)
        engine.ACTIVE[box].abort()  # what the watchdog does once the stage timeout passes
        opened.set()
        worker.join(30)  # a bound on a hang, not a timing assertion (the read deadline: 60 s)
        assert not worker.is_alive(), "the stalled FETCH was cut once the connection opened"
        proxy.resume()
    finally:
        proxy.close()
    (report,) = reports
    assert isinstance(report.error, StageTimeout)
    assert health(sqlite_app, box).error_kind == "stalled"
