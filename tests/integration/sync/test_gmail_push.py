"""Changes on a Gmail mailbox that come without new mail or a flag change: a label-only
change (Gmail raises the message's MODSEQ in All Mail; the proxy does the same) is seen by
the next sync, and new mail and label changes reach the store through IDLE on All Mail
(sync/idle.py; the scheduler's PUSH_ROLES includes `all`). Against the real Dovecot behind
the Gmail proxy (mailroom_testing/gmail_proxy.py).

Timing is measured and printed, never asserted: a wait only bounds how long a test may
hang when the behaviour is broken."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Message, MessageCopy
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.scheduler import PollScheduler
from mailroom_testing.gmail_proxy import ALL_MAIL, GmailProxy
from tests.integration.sync.test_gmail import copies_of, gmail_box, mail


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def labels_of(app: App, box: int, subject: str) -> list[str] | None:
    """The labels of the live copy of the message with this subject (None: not stored)."""
    with app.sessions() as session:
        return session.scalar(
            select(MessageCopy.labels)
            .join(Message, Message.id == MessageCopy.message_id)
            .where(
                MessageCopy.mailbox_id == box,
                MessageCopy.gone_at.is_(None),
                Message.subject == subject,
            )
        )


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


def test_a_label_only_change_raises_all_mails_modseq_and_the_next_sync_stores_it(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    first = mail(login, 1)
    gmail.deliver(login, first, ["\\Inbox"])
    gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    box = gmail_box(sqlite_app, gmail, imap_user)
    assert sync_mailbox(sqlite_app, box).fetched == 2
    conn = gmail.dovecot.session(login)
    before = conn.status(f'"{ALL_MAIL}"', "(HIGHESTMODSEQ)")
    gmail.bodies.clear()

    gmail.deliver_label(login, first, "Partners")  # no new mail, no flag: a label alone

    assert conn.status(f'"{ALL_MAIL}"', "(HIGHESTMODSEQ)") != before, "as Gmail does"
    added = sync_mailbox(sqlite_app, box)
    assert added.error is None and not added.folders[0].skipped, "STATUS saw the change"
    assert added.fetched == 0 and gmail.bodies == [], "labels only: no body fetched"
    assert labels_of(sqlite_app, box, "Gmail 1") == ["Partners", "\\Inbox"]
    assert all(c.flags == [] for c in copies_of(sqlite_app, box)), "the flags are untouched"

    gmail.remove_label(login, first, "\\Inbox")  # archived: only "Partners" is left
    removed = sync_mailbox(sqlite_app, box)

    assert removed.error is None and removed.fetched == 0
    assert labels_of(sqlite_app, box, "Gmail 1") == ["Partners"]
    assert labels_of(sqlite_app, box, "Gmail 2") == ["\\Inbox"]


def test_new_gmail_mail_and_a_label_change_reach_the_store_through_idle_on_all_mail(
    sqlite_app: App,
    gmail: GmailProxy,
    imap_user: tuple[str, str],
    scheduler_factory: Callable[..., PollScheduler],
) -> None:
    login = imap_user[0]
    gmail.deliver(login, mail(login, 1), ["\\Inbox"])
    box = gmail_box(sqlite_app, gmail, imap_user)
    assert sync_mailbox(sqlite_app, box).error is None
    scheduler = scheduler_factory()  # polls only once an hour: only IDLE can bring it in
    assert wait_for(lambda: bool(scheduler._idle and scheduler._idle.watchers))
    assert scheduler._idle is not None and set(scheduler._idle.watchers) == {(box, ALL_MAIL)}
    assert wait_for(lambda: any(b"IDLE" in c for c in list(gmail.commands)))
    time.sleep(0.5)  # let the watcher's IDLE be relayed to Dovecot

    start = time.monotonic()
    pushed = mail(login, 2)
    gmail.deliver(login, pushed, ["\\Inbox", "Customers"])
    assert wait_for(lambda: labels_of(sqlite_app, box, "Gmail 2") is not None), "not pushed"
    mail_latency = time.monotonic() - start
    assert wait_for(lambda: labels_of(sqlite_app, box, "Gmail 2") == ["Customers", "\\Inbox"])

    start = time.monotonic()
    gmail.deliver_label(login, pushed, "Partners")  # a label alone, pushed as a FETCH
    assert wait_for(
        lambda: labels_of(sqlite_app, box, "Gmail 2") == ["Customers", "Partners", "\\Inbox"]
    ), "the label change was not pushed"
    label_latency = time.monotonic() - start
    print(f"IDLE on All Mail: new mail {mail_latency:.2f} s, label change {label_latency:.2f} s")
    assert [c.folder for c in copies_of(sqlite_app, box)] == [ALL_MAIL, ALL_MAIL]
