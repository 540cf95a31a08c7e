"""The sync engine against the real Dovecot: stages, skip, expunges, UIDVALIDITY, backfill."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import MailboxSource
from mailroom.connectors.imap import ImapSource
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox, Message, MessageCopy
from mailroom.sync import copies
from mailroom.sync.connect import open_source
from mailroom.sync.engine import ProgressEvent, sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.fault_proxy import FaultProxy
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    db_ids,
    expunge,
    message_count,
    seed,
    server_ids,
    through,
)


def state_of(app: App, mailbox_id: int, folder: str) -> FolderState:
    with app.sessions() as session:
        state = session.scalar(
            select(FolderState).where(
                FolderState.mailbox_id == mailbox_id, FolderState.name == folder
            )
        )
        assert state is not None
        return state


def test_first_sync_backfills_newest_first_and_a_resync_costs_no_fetch(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 12)
    seed(dovecot, login, "Sent", 3, start=100)
    box = connect_mailbox(sqlite_app, dovecot, imap_user)
    events: list[ProgressEvent] = []

    report = sync_mailbox(sqlite_app, box, batch_size=5, progress=events.append)

    assert report.error is None and report.messages == 15
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX", "Sent"))
    with sqlite_app.sessions() as session:
        first_uids = session.scalars(
            select(MessageCopy.uid)
            .where(MessageCopy.folder == "INBOX")
            .order_by(MessageCopy.id)
            .limit(5)
        ).all()
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None and mailbox.status == "ok"
        assert (mailbox.progress_done, mailbox.progress_total) == (15, 15)
        assert mailbox.progress_done_bytes == mailbox.progress_total_bytes > 0
    assert list(first_uids) == [12, 11, 10, 9, 8], "the newest mail comes first"
    assert events[-1].done == events[-1].total == 15
    inbox = state_of(sqlite_app, box, "INBOX")
    assert (inbox.stage, inbox.last_uid, inbox.backfill_below) == ("ready", 12, None)
    assert inbox.highestmodseq is not None

    again = sync_mailbox(sqlite_app, box)
    assert again.error is None and all(f.skipped for f in again.folders)
    assert again.fetched == 0


def test_new_mail_and_expunges_are_picked_up_with_qresync_and_without(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 6)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    assert sync_mailbox(sqlite_app, box).messages == 6
    proxy.hide(b"QRESYNC")  # the second round: a server without QRESYNC (UID SEARCH fallback)
    for use_qresync in (True, False):

        def opener(mailbox: Mailbox, app: App, flag: bool = use_qresync) -> MailboxSource:
            source = open_source(mailbox, app)
            assert isinstance(source, ImapSource)
            assert source.supports("QRESYNC") is flag
            return source

        if not use_qresync:
            through(sqlite_app, box, proxy.port)
        on_server = sorted(server_ids(dovecot, login, "INBOX"))
        expunge(dovecot, login, "INBOX", on_server[:2])
        seed(dovecot, login, "INBOX", 1, start=50 + int(use_qresync))
        report = sync_mailbox(sqlite_app, box, opener=opener)
        assert report.error is None
        assert (report.fetched, report.gone) == (1, 2), f"qresync={use_qresync}"
        assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    # the CRM is the archive: the expunged messages keep their rows, their copies say gone
    with sqlite_app.sessions() as session:
        gone = session.scalars(select(MessageCopy).where(MessageCopy.gone_at.is_not(None)))
        assert len(list(gone)) == 4
    assert message_count(sqlite_app) == 8


def test_a_qresync_resync_reads_no_list_of_the_folders_uids(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cost grows with change: with QRESYNC the server names what vanished, so a resync
    never loads every live UID of the folder (copies.live_uids) to diff against."""
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 6)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    assert sync_mailbox(sqlite_app, box).messages == 6

    def refuse(*_args: object, **_kwargs: object) -> set[int]:
        raise AssertionError("a QRESYNC resync loaded every live UID")

    monkeypatch.setattr(copies, "live_uids", refuse)
    expunge(dovecot, login, "INBOX", sorted(server_ids(dovecot, login, "INBOX"))[:2])
    seed(dovecot, login, "INBOX", 3, start=50)
    report = sync_mailbox(sqlite_app, box)
    assert report.error is None
    assert (report.fetched, report.gone) == (3, 2)
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))


def test_uidvalidity_change_ends_with_no_duplicate_and_no_loss(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 7)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    sync_mailbox(sqlite_app, box)
    old = state_of(sqlite_app, box, "INBOX").uidvalidity
    assert old is not None
    dovecot.doveadm("mailbox", "update", "-u", login, "--uid-validity", str(old + 1000), "INBOX")

    report = sync_mailbox(sqlite_app, box, batch_size=3)

    assert report.error is None and report.folders[0].uidvalidity_changed
    assert report.messages == 0 and report.copies == 7, "same messages, new places"
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    with sqlite_app.sessions() as session:
        copies = session.scalars(select(MessageCopy)).all()
    assert {(c.uidvalidity, c.gone_at is None) for c in copies} == {
        (old, False),
        (old + 1000, True),
    }
    assert message_count(sqlite_app) == 7


def test_backfill_stops_between_batches_and_resumes_where_it_stopped(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 20)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    stop = threading.Event()

    def stop_after_two(event: ProgressEvent) -> None:
        if event.done >= 8:
            stop.set()

    first = sync_mailbox(sqlite_app, box, batch_size=4, progress=stop_after_two, stop=stop)
    state = state_of(sqlite_app, box, "INBOX")
    assert first.fetched == 8 and (state.stage, state.backfill_below) == ("backfill", 13)
    seed(dovecot, login, "INBOX", 2, start=40)  # new mail meanwhile comes first next time

    second = sync_mailbox(sqlite_app, box, batch_size=4)

    assert second.fetched == 14 and second.error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    assert state_of(sqlite_app, box, "INBOX").stage == "ready"


def test_since_limits_the_backfill_and_a_folder_added_later_backfills_too(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    today = datetime.now(UTC)
    for n, age in enumerate((400, 200, 10, 1)):
        data = build_message(sender="jo@client.example", subject=f"Aged {age}", minutes=n)
        dovecot.append(login, "INBOX", data, internaldate=today - timedelta(days=age))
    dovecot.create_folder(login, "Projects")
    seed(dovecot, login, "Projects", 3)
    since = (today - timedelta(days=30)).date()
    box = connect_mailbox(sqlite_app, dovecot, imap_user, since=since, folders=("INBOX",))

    sync_mailbox(sqlite_app, box)
    with sqlite_app.sessions() as session:
        subjects = set(session.scalars(select(Message.subject)))
    assert subjects == {"Aged 10", "Aged 1"}

    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        mailbox.folders = ["INBOX", "Projects"]
    report = sync_mailbox(sqlite_app, box)
    assert [f.skipped for f in report.folders] == [True, False]
    assert len(db_ids(sqlite_app, box, "Projects")) == 3
