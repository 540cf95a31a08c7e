"""A sync that raises something nobody foresaw (issue 11, item 7) is a mailbox error with a
backoff, never a traceback, never a mailbox left `syncing`, and never stops the others.
No server: the sources here are in memory (mailroom_testing.memory_source)."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence

import pytest

from mailroom.app import App
from mailroom.connectors.base import FolderInfo
from mailroom.connectors.imap import ImapSource
from mailroom.db.models import Mailbox
from mailroom.sync import engine
from mailroom.sync.idle import IdleHub
from mailroom.sync.scheduler import PollScheduler
from mailroom_testing.memory_source import MemorySource
from tests.helpers.sync_support import setup_company


class BrokenSource(MemorySource):
    """A source whose LIST raises an exception no connector translated."""

    def list_folders(self) -> Sequence[FolderInfo]:
        raise KeyError("nobody foresaw this")


def opener_for(broken: int) -> engine.SourceOpener:
    def open_(mailbox: Mailbox, app: App) -> engine.AnySource:
        return BrokenSource() if mailbox.id == broken else MemorySource()

    return open_


def row(app: App, mailbox_id: int) -> Mailbox:
    with app.sessions() as session:
        found = session.get(Mailbox, mailbox_id)
        assert found is not None
        return found


def test_an_unexpected_exception_is_a_mailbox_error_with_backoff(
    sqlite_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    (box,) = setup_company(sqlite_app)
    with caplog.at_level(logging.ERROR, logger="mailroom.sync.engine"):
        report = engine.sync_mailbox(sqlite_app, box, opener=opener_for(box))
    assert report.error is not None and report.error.kind == "internal"
    assert "KeyError" in report.error.message
    mailbox = row(sqlite_app, box)
    assert mailbox.status == "error" and mailbox.error_kind == "internal"
    assert mailbox.next_attempt_at is not None and mailbox.sync_owner is None
    assert any(r.exc_info for r in caplog.records), "the traceback is in the log"


def test_sync_all_goes_on_after_a_mailbox_fails(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = setup_company(sqlite_app, mailbox_users=2)
    real = engine.sync_mailbox

    def sync_one(app: App, mailbox_id: int, **kw: object) -> engine.SyncReport:
        if mailbox_id == first:
            raise RuntimeError("the claim itself failed")
        return real(app, mailbox_id, opener=opener_for(first), **kw)

    monkeypatch.setattr(engine, "sync_mailbox", sync_one)
    reports = engine.sync_all(sqlite_app)
    assert [r.mailbox_id for r in reports] == [first, second]
    assert reports[0].error is not None and reports[0].error.kind == "internal"
    assert reports[1].error is None and row(sqlite_app, second).status == "ok"


def test_the_scheduler_logs_a_sync_that_raised(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (box,) = setup_company(sqlite_app)

    def explode(*args: object, **kw: object) -> engine.SyncReport:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "sync_mailbox", explode)
    scheduler = PollScheduler(sqlite_app, interval=300, idle=False)
    with caplog.at_level(logging.WARNING, logger="mailroom.sync.scheduler"):
        report = scheduler._sync(box, False)
    assert report.error is not None and "RuntimeError: boom" in report.error.message
    assert any("boom" in r.getMessage() or r.exc_info for r in caplog.records)


def test_an_idle_watcher_backs_off_instead_of_dying() -> None:
    attempts: list[float] = []

    def opener() -> ImapSource:
        attempts.append(time.monotonic())
        raise ValueError("invalid literal for int() with base 10: b'abc'")

    hub = IdleHub(on_change=lambda _: None, first_backoff=0.2, max_backoff=0.4)
    try:
        watched = hub.watch((1, "INBOX"), opener)
        deadline = time.monotonic() + 10
        while len(attempts) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(attempts) >= 4, "the watch is retried, not dead"
        assert watched.alive and watched.failures >= 3
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert all(gap >= 0.15 for gap in gaps), "each retry waits its backoff"
    finally:
        hub.stop()
