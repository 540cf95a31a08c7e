"""The fetch quarantine on Gmail's path (sync/gmail.py, sync/quarantine.py): a message All
Mail lists but the server answers `BODY[] NIL` for is retried, then quarantined, never
passed silently and never blocking the mailbox; later mail is stored meanwhile; a Retry
after the fix stores it once. Against the real Dovecot behind the Gmail proxy
(mailroom_testing/gmail_proxy.py, `unreadable`)."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import FolderState, MessageCopy, QuarantinedMessage
from mailroom.services.quarantine import list_quarantine, retry_message
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.quarantine import QUARANTINE_AFTER
from mailroom_testing.gmail_proxy import GmailProxy
from tests.helpers.sync_support import health, message_count
from tests.integration.sync.test_gmail import gmail_box, mail


def all_mail_state(app: App, box: int) -> FolderState:
    with app.sessions() as session:
        state = session.scalar(select(FolderState).where(FolderState.mailbox_id == box))
        assert state is not None
        session.expunge(state)
        return state


def rows(app: App, box: int) -> list[tuple[int, str, int]]:
    """(UID, state, attempts) of the mailbox's quarantine rows."""
    with app.sessions() as session:
        found = session.execute(
            select(QuarantinedMessage.uid, QuarantinedMessage.state, QuarantinedMessage.attempts)
            .where(QuarantinedMessage.mailbox_id == box)
            .order_by(QuarantinedMessage.uid)
        )
        return [tuple(r) for r in found]  # type: ignore[misc]


def stored_subjects(app: App, box: int) -> list[str]:
    """The subjects of the mailbox's live copies (each copy once)."""
    from mailroom.db.models import Message

    with app.sessions() as session:
        found = session.scalars(
            select(Message.subject)
            .join(MessageCopy, MessageCopy.message_id == Message.id)
            .where(MessageCopy.mailbox_id == box, MessageCopy.gone_at.is_(None))
        )
        return sorted(s or "" for s in found)


def test_an_unreadable_gmail_message_is_retried_quarantined_then_a_retry_after_a_fix_stores_it(
    any_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    """On SQLite and PostgreSQL."""
    login = imap_user[0]
    for n in (1, 2, 3):
        gmail.deliver(login, mail(login, n, message_id=f"gq{n}@client.example"), ["\\Inbox"])
    gmail.unreadable.add("gq2@client.example")
    box = gmail_box(any_app, gmail, imap_user)

    first = sync_mailbox(any_app, box)

    assert first.error is not None and "UID 2" in first.error.message, first.error
    assert "BODY[] NIL" in first.error.message
    assert stored_subjects(any_app, box) == ["Gmail 1", "Gmail 3"], "the others are stored"
    assert rows(any_app, box) == [(2, "retrying", 1)]
    state = all_mail_state(any_app, box)
    assert state.stage == "backfill" and state.backfill_below == 4, "the inbox pass moves none"
    assert health(any_app, box).error_kind == "server_error"
    assert "quarantine" in (health(any_app, box).error_hint or "")

    gmail.bodies.clear()
    for attempt in range(2, QUARANTINE_AFTER + 1):
        report = sync_mailbox(any_app, box)
        assert rows(any_app, box)[0][2] == attempt
    assert gmail.bodies == [], "held, the stored messages are not fetched again"
    assert gmail.nil_bodies == [2] * QUARANTINE_AFTER

    assert report.error is None, report.error  # given up on: the mailbox is not blocked
    assert rows(any_app, box) == [(2, "quarantined", QUARANTINE_AFTER)]
    state = all_mail_state(any_app, box)
    assert state.stage == "ready" and state.backfill_below is None
    assert (state.done_messages, state.total_messages) == (3, 3)
    assert health(any_app, box).status == "ok"
    with any_app.sessions() as session:
        listed = list_quarantine(session=session, mailbox_id=box)
    assert [(q["uid"], q["state"], q["folder"]) for q in listed] == [
        (2, "quarantined", "[Gmail]/All Mail")
    ]

    # Later mail is stored; the quarantined message is not asked for again.
    gmail.deliver(login, mail(login, 4, message_id="gq4@client.example"), ["\\Inbox"])
    later = sync_mailbox(any_app, box)
    assert later.error is None and later.fetched == 1
    assert gmail.nil_bodies == [2] * QUARANTINE_AFTER and gmail.bodies == [4]
    assert stored_subjects(any_app, box) == ["Gmail 1", "Gmail 3", "Gmail 4"]

    # The server is fixed; a person's Retry fetches it by UID at the next sync, once.
    gmail.unreadable.clear()
    with any_app.sessions() as session:
        retry_message(session=session, mailbox_id=box, quarantine_id=listed[0]["id"])
    retried = sync_mailbox(any_app, box)

    assert retried.error is None, retried.error
    assert retried.fetched == 1 and gmail.bodies == [4, 2]
    assert rows(any_app, box) == []
    assert stored_subjects(any_app, box) == ["Gmail 1", "Gmail 2", "Gmail 3", "Gmail 4"]
    assert message_count(any_app) == 4
    with any_app.sessions() as session:
        copy = session.scalars(
            select(MessageCopy).where(MessageCopy.mailbox_id == box, MessageCopy.uid == 2)
        ).one()
    assert copy.labels == ["\\Inbox"] and copy.server_id is not None, "with its labels"
    quiet = sync_mailbox(any_app, box)
    assert quiet.error is None and quiet.fetched == 0 and gmail.bodies == [4, 2]


def test_an_unreadable_inbox_message_holds_the_backfill_cursor_and_new_mail_holds_last_uid(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    """Inbox first, then the rest newest first: the rest pass must not pass an inbox
    message left to retry; new mail oldest first must not pass one either."""
    login = imap_user[0]
    for n in range(1, 6):  # UIDs 1..5; 2 is in the inbox and unreadable, the rest archived
        labels = ["\\Inbox"] if n == 2 else ["Customers"]
        gmail.deliver(login, mail(login, n, message_id=f"gh{n}@client.example"), labels)
    gmail.unreadable.update({"gh2@client.example", "gh7@client.example"})
    box = gmail_box(sqlite_app, gmail, imap_user)

    first = sync_mailbox(sqlite_app, box, batch_size=1)

    assert first.error is not None and "UID 2" in first.error.message
    assert gmail.nil_bodies == [2] and gmail.bodies == [5, 4, 3, 1], "inbox first, the rest"
    assert all_mail_state(sqlite_app, box).backfill_below == 3, "held above the inbox's UID 2"

    for n in (6, 7, 8):  # new mail; 7 is unreadable
        gmail.deliver(login, mail(login, n, message_id=f"gh{n}@client.example"), ["\\Inbox"])
    gmail.bodies.clear()
    second = sync_mailbox(sqlite_app, box, batch_size=1)

    assert second.error is not None and "UID 7" in second.error.message
    assert gmail.bodies == [6, 8], "the mail after the unreadable one is stored all the same"
    state = all_mail_state(sqlite_app, box)
    assert state.last_uid == 6 and state.backfill_below == 3
    assert rows(sqlite_app, box) == [(2, "retrying", 2), (7, "retrying", 1)]

    gmail.unreadable.clear()  # the server recovers: both are stored at the next sync
    gmail.bodies.clear()
    third = sync_mailbox(sqlite_app, box, batch_size=1)

    assert third.error is None, third.error
    assert sorted(gmail.bodies) == [2, 7] and rows(sqlite_app, box) == []
    state = all_mail_state(sqlite_app, box)
    assert state.stage == "ready" and state.last_uid == 8
    assert len(stored_subjects(sqlite_app, box)) == 8 and message_count(sqlite_app) == 8


def test_a_gmail_message_listed_over_the_size_limit_is_never_asked_for_and_ends_quarantined(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    gmail.deliver(login, mail(login, 1), ["\\Inbox"])
    huge = gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    gmail.listed_sizes[huge] = 300 << 20  # over the 256 MiB message limit
    box = gmail_box(sqlite_app, gmail, imap_user)

    reports = [sync_mailbox(sqlite_app, box) for _ in range(QUARANTINE_AFTER)]

    first = reports[0].error
    assert first is not None and "message limit" in first.message, first
    assert reports[-1].error is None, "quarantined: the mailbox is no longer held up by it"
    assert rows(sqlite_app, box) == [(2, "quarantined", QUARANTINE_AFTER)]
    assert gmail.bodies == [1] and gmail.nil_bodies == [], "UID 2 is never asked for"
    assert stored_subjects(sqlite_app, box) == ["Gmail 1"]
