"""Issue 11, item 8: a message the server lists but does not send readably is retried,
then quarantined with its error, never skipped; the folder cursor never passes it until
it is stored or quarantined (sync/quarantine.py). Against the scripted hostile server
(mailroom_testing.hostile_server.ScriptedFolder) for IMAP and POP3."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox, MessageCopy, QuarantinedMessage
from mailroom.services.quarantine import dismiss_message, list_quarantine, retry_message
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.quarantine import QUARANTINE_AFTER
from mailroom_testing.builders import build_message
from mailroom_testing.hostile_server import (
    LEFT_OUT,
    UNREADABLE,
    HostileServer,
    PopMessage,
    ScriptedFolder,
)
from tests.helpers.sync_support import health, message_count
from tests.integration.sync.test_hostile_servers import hostile_mailbox


def mail(n: int) -> bytes:
    return build_message(
        sender="jo@client.example",
        to="mallory@hostile.example",
        subject=f"Quarantine {n}",
        message_id=f"q{n}@client.example",
        minutes=n,
    )


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def folder_state(app: App, box: int) -> FolderState:
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


def copies(app: App, box: int) -> int:
    with app.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(MessageCopy).where(MessageCopy.mailbox_id == box)
            )
            or 0
        )


def test_an_unreadable_message_holds_the_backfill_cursor_then_is_quarantined_and_listed(
    any_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({1: mail(1), 2: UNREADABLE, 3: mail(3)})
    folder.install(hostile)
    box = hostile_mailbox(any_app, hostile)

    first = sync_mailbox(any_app, box)

    assert first.error is not None and "UID 2" in first.error.message, first.error
    assert "BODY[] NIL" in first.error.message  # what the server said, not a guess
    assert message_count(any_app) == 2  # the others are stored all the same
    state = folder_state(any_app, box)
    assert state.stage == "backfill" and state.backfill_below == 3  # never below UID 2
    assert rows(any_app, box) == [(2, "retrying", 1)]
    row = health(any_app, box)
    assert row.status == "error" and row.error_kind == "server_error"
    assert row.next_attempt_at is not None, "the retry waits for the mailbox's backoff"
    assert "quarantine" in (row.error_hint or "")

    for attempt in range(2, QUARANTINE_AFTER + 1):
        report = sync_mailbox(any_app, box)
        assert rows(any_app, box)[0][2] == attempt

    assert report.error is None, report.error  # given up on: the rest of the folder goes on
    assert rows(any_app, box) == [(2, "quarantined", QUARANTINE_AFTER)]
    state = folder_state(any_app, box)
    assert state.stage == "ready" and state.backfill_below is None
    assert (state.done_messages, state.total_messages) == (3, 3)  # each counted once
    assert health(any_app, box).status == "ok"
    with any_app.sessions() as session:
        listed = list_quarantine(session=session, mailbox_id=box)
    assert [(q["uid"], q["state"], q["folder"]) for q in listed] == [(2, "quarantined", "INBOX")]
    assert "BODY[] NIL" in listed[0]["last_error"]
    assert message_count(any_app) == 2 and copies(any_app, box) == 2


def test_new_mail_after_an_unreadable_one_is_stored_but_the_cursor_stays_below_it(
    any_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({})
    folder.install(hostile)
    box = hostile_mailbox(any_app, hostile)
    assert sync_mailbox(any_app, box).error is None  # an empty, ready INBOX
    folder.messages.update({1: mail(1), 2: LEFT_OUT, 3: mail(3)})

    report = sync_mailbox(any_app, box)

    assert report.error is not None and "left it out" in report.error.message
    assert folder_state(any_app, box).last_uid == 1  # forward cursor below UID 2
    assert message_count(any_app) == 2

    folder.messages[2] = mail(2)  # the server is fixed
    report = sync_mailbox(any_app, box)

    assert report.error is None, report.error
    state = folder_state(any_app, box)
    assert state.last_uid == 3 and state.stage == "ready"
    assert (state.done_messages, state.total_messages) == (3, 3)
    assert rows(any_app, box) == []  # stored: no row left
    assert message_count(any_app) == 3 and copies(any_app, box) == 3  # each once


def test_a_message_expunged_between_listing_and_fetch_is_no_failure(
    sqlite_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({1: mail(1), 2: mail(2)})
    folder.install(hostile)
    listing = hostile._script.answers[b"UID FETCH"]

    def expunge_before_the_body_fetch(tag: bytes, args: bytes) -> Iterator[bytes]:
        if b"BODY.PEEK[]" in args:
            folder.messages.pop(2, None)
        return iter(listing(tag, args))

    hostile.on("UID FETCH", expunge_before_the_body_fetch)
    box = hostile_mailbox(sqlite_app, hostile)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert rows(sqlite_app, box) == [] and message_count(sqlite_app) == 1
    assert folder_state(sqlite_app, box).stage == "ready"


def test_a_retrying_message_expunged_before_the_next_sync_leaves_no_row_and_no_error(
    sqlite_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)
    sync_mailbox(sqlite_app, box)
    folder.messages.update({1: mail(1), 2: UNREADABLE, 3: mail(3)})
    assert sync_mailbox(sqlite_app, box).error is not None
    assert rows(sqlite_app, box) == [(2, "retrying", 1)]

    del folder.messages[2]  # deleted on the server by its owner
    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert rows(sqlite_app, box) == []
    state = folder_state(sqlite_app, box)
    assert state.last_uid == 3 and state.stage == "ready"


def test_retry_after_the_server_is_fixed_stores_the_message_once(
    sqlite_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({1: mail(1), 2: UNREADABLE})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)
    for _ in range(QUARANTINE_AFTER):
        sync_mailbox(sqlite_app, box)
    assert rows(sqlite_app, box) == [(2, "quarantined", QUARANTINE_AFTER)]
    assert sync_mailbox(sqlite_app, box).folders[0].skipped  # STATUS unchanged: no fetch

    folder.messages[2] = mail(2)
    with sqlite_app.sessions() as session:
        qid = list_quarantine(session=session, mailbox_id=box)[0]["id"]
        answer = retry_message(session=session, mailbox_id=box, quarantine_id=qid)
    assert answer["state"] == "retrying"
    assert health(sqlite_app, box).sync_requested_at is not None

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert rows(sqlite_app, box) == []
    assert message_count(sqlite_app) == 2 and copies(sqlite_app, box) == 2


def test_a_retried_message_that_fails_again_is_quarantined_at_once(
    sqlite_app: App, hostile: HostileServer
) -> None:
    ScriptedFolder({1: UNREADABLE}).install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)
    for _ in range(QUARANTINE_AFTER):
        sync_mailbox(sqlite_app, box)
    with sqlite_app.sessions() as session:
        qid = list_quarantine(session=session, mailbox_id=box)[0]["id"]
        retry_message(session=session, mailbox_id=box, quarantine_id=qid)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None  # one more attempt, not another round of errors
    assert rows(sqlite_app, box) == [(1, "quarantined", QUARANTINE_AFTER)]


def test_dismiss_keeps_the_message_listed_as_dismissed_and_it_is_not_fetched_again(
    sqlite_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({1: UNREADABLE})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)
    sync_mailbox(sqlite_app, box)
    with sqlite_app.sessions() as session:
        qid = list_quarantine(session=session, mailbox_id=box)[0]["id"]
        dismiss_message(session=session, mailbox_id=box, quarantine_id=qid)
    folder.messages[2] = mail(2)  # new mail: the folder is synced again
    fetched_before = sum(1 for line in hostile.seen if b"BODY.PEEK[]" in line)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert rows(sqlite_app, box) == [(1, "dismissed", 1)]  # not even tried again
    bodies = [line for line in hostile.seen if b"BODY.PEEK[]" in line][fetched_before:]
    assert bodies and all(b" 2 " in line for line in bodies), bodies  # UID 1 not asked
    assert folder_state(sqlite_app, box).stage == "ready"
    with sqlite_app.sessions() as session:
        assert list_quarantine(session=session, mailbox_id=box)[0]["state"] == "dismissed"


def test_a_uidvalidity_change_clears_the_folders_quarantine(
    sqlite_app: App, hostile: HostileServer
) -> None:
    folder = ScriptedFolder({1: UNREADABLE, 2: mail(2)})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)
    sync_mailbox(sqlite_app, box)
    assert rows(sqlite_app, box) == [(1, "retrying", 1)]

    folder.uidvalidity = 8
    folder.messages = {1: mail(1), 2: mail(2)}
    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert rows(sqlite_app, box) == []
    assert message_count(sqlite_app) == 2


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "fetch-worker"])
def test_a_message_over_the_size_limit_is_never_fetched_and_ends_quarantined(
    sqlite_app: App, hostile: HostileServer, workers: bool
) -> None:
    if workers:
        sqlite_app.settings = replace(sqlite_app.settings, parse_worker_min=1)
    folder = ScriptedFolder({1: mail(1), 2: mail(2)}, listed_sizes={2: 300 << 20})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)

    reports = [sync_mailbox(sqlite_app, box) for _ in range(QUARANTINE_AFTER)]

    first = reports[0].error
    assert first is not None and "message limit" in first.message, first
    assert reports[-1].error is None  # quarantined: the mailbox is no longer held up by it
    assert rows(sqlite_app, box) == [(2, "quarantined", QUARANTINE_AFTER)]
    asked = {line.split(b" ")[3] for line in hostile.seen if b"BODY.PEEK[]" in line}
    assert asked == {b"1"}, asked  # UID 2 never asked for
    assert message_count(sqlite_app) == 1


def test_the_fetch_worker_path_holds_the_cursor_too(
    sqlite_app: App, hostile: HostileServer
) -> None:
    sqlite_app.settings = replace(sqlite_app.settings, parse_worker_min=1)
    folder = ScriptedFolder({1: mail(1), 2: UNREADABLE, 3: mail(3)})
    folder.install(hostile)
    box = hostile_mailbox(sqlite_app, hostile)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is not None and "UID 2" in report.error.message
    assert folder_state(sqlite_app, box).backfill_below == 3
    assert rows(sqlite_app, box) == [(2, "retrying", 1)]
    assert message_count(sqlite_app) == 2

    folder.messages[2] = mail(2)
    assert sync_mailbox(sqlite_app, box).error is None
    assert rows(sqlite_app, box) == [] and message_count(sqlite_app) == 3


def pop3_server(refuse: set[int], count: int = 3) -> HostileServer:
    """A POP3 maildrop of `count` messages whose RETR of the numbers in `refuse` fails."""
    server = HostileServer(pop3=True)
    server.messages = [PopMessage(f"u{n}", mail(n)) for n in range(1, count + 1)]

    def retr(tag: bytes, args: bytes) -> Iterator[bytes]:
        number = int(args)
        if number in refuse:
            yield b"-ERR message file is damaged\r\n"
            return
        yield server._pop3_default(b"RETR", args)

    server.on("RETR", retr)
    return server


def test_pop3_a_refused_retr_is_retried_then_quarantined_and_never_deleted(
    sqlite_app: App,
) -> None:
    server = pop3_server({2})
    try:
        box = hostile_mailbox(sqlite_app, server, protocol="pop3")
        with transaction(sqlite_app.sessions) as session:
            mailbox = session.get(Mailbox, box)
            assert mailbox is not None
            mailbox.delete_after_fetch = True
        first = sync_mailbox(sqlite_app, box)
        assert first.error is not None and "damaged" in first.error.message
        assert message_count(sqlite_app) == 2
        for _ in range(QUARANTINE_AFTER - 1):
            report = sync_mailbox(sqlite_app, box)
        assert report.error is None, report.error
        with sqlite_app.sessions() as session:
            listed = list_quarantine(session=session, mailbox_id=box)
        assert [(q["uidl"], q["state"]) for q in listed] == [("u2", "quarantined")]
        deleted = {line for line in server.seen if line.startswith(b"DELE")}
        assert deleted == {b"DELE 1", b"DELE 3"}  # stored ones only, never the refused one
        row = health(sqlite_app, box)
        assert (row.progress_done, row.progress_total) == (3, 3)
        seen = len(server.seen)
        assert sync_mailbox(sqlite_app, box).error is None
        assert b"RETR 2" not in server.seen[seen:]  # quarantined: not fetched again
    finally:
        server.close()
