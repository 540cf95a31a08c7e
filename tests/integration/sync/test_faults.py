"""Faults made for real: a connection cut mid-literal, injected [THROTTLED] and BYE, a kick,
Dovecot stopped mid-sync, expunges during a batched fetch. Each ends with the database
equal to the server's content: no duplicate, no loss, no partial message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Message
from mailroom.sync.engine import ProgressEvent, sync_mailbox
from mailroom_testing.dovecot import DovecotServer, imap_bytes
from mailroom_testing.fault_proxy import FaultProxy
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    expunge,
    health,
    seed,
    through,
)


def assert_no_partial_message(app: App, sent: list[bytes]) -> None:
    """Every stored raw message is byte for byte one that was seeded."""
    expected = {imap_bytes(raw) for raw in sent}
    with app.sessions() as session:
        places = list(session.execute(select(Message.raw_sha256, Message.raw_location)))
    for digest, where in places:
        assert digest is not None and app.blobs.read_raw(digest, where) in expected


def test_a_cut_in_the_middle_of_a_fetch_literal_loses_and_duplicates_nothing(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    login = imap_user[0]
    sent = seed(dovecot, login, "INBOX", 30)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    through(sqlite_app, box, proxy.port)
    proxy.cut_after(b"Subject: Message 17", extra=20)  # inside the second batch's literal

    report = sync_mailbox(sqlite_app, box, batch_size=10)

    assert proxy.fired and report.error is not None
    assert health(sqlite_app, box).error_kind == "connection_lost"
    assert report.fetched == 10, "the first batch was committed, the cut one was not"
    assert_no_partial_message(sqlite_app, sent)
    assert sync_mailbox(sqlite_app, box, batch_size=10).error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    assert_no_partial_message(sqlite_app, sent)


@pytest.mark.parametrize(
    ("line", "kind", "at_least"),
    [
        (b"{tag} NO [THROTTLED] Please slow down", "throttled", 0),
        (
            b"{tag} BAD Request is throttled. Suggested Backoff Time: 900000 milliseconds",
            "throttled",
            900,
        ),
        (b"* BYE Server shutting down", "connection_lost", 0),
    ],
)
def test_throttling_and_bye_back_off_without_marking_the_credentials_bad(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    proxy: FaultProxy,
    line: bytes,
    kind: str,
    at_least: int,
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 3)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    through(sqlite_app, box, proxy.port)
    proxy.answer(b"BODY.PEEK[]", line, close=line.startswith(b"*"))
    before = datetime.now(UTC)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is not None and proxy.fired
    mailbox = health(sqlite_app, box)
    assert (mailbox.status, mailbox.error_kind, mailbox.auth_failure_count) == ("error", kind, 0)
    retry = mailbox.next_attempt_at
    assert retry is not None
    assert retry.replace(tzinfo=UTC) >= before + timedelta(seconds=at_least)
    assert sync_mailbox(sqlite_app, box).error is None
    assert health(sqlite_app, box).status == "ok"
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))


def test_a_kick_and_a_dovecot_restart_mid_sync_end_with_the_server_content(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 100)  # 20 batches: the kick lands mid-folder under load
    seed(dovecot, login, "Sent", 5, start=1000)
    box = connect_mailbox(sqlite_app, dovecot, imap_user)

    def kick(event: ProgressEvent) -> None:
        if event.done == 5:
            dovecot.doveadm("kick", login)

    first = sync_mailbox(sqlite_app, box, batch_size=5, progress=kick)
    # the batches read ahead before the kick (sync/prefetch.py) are committed too
    assert first.error is not None and 5 <= first.fetched < 100

    def stop_dovecot(event: ProgressEvent) -> None:
        if event.done >= 15 and dovecot.running:
            dovecot.pause()

    try:
        second = sync_mailbox(sqlite_app, box, batch_size=5, progress=stop_dovecot)
    finally:
        dovecot.resume()
    assert second.error is not None and health(sqlite_app, box).status == "error"

    third = sync_mailbox(sqlite_app, box, batch_size=5)
    assert third.error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX", "Sent"))


def test_expunges_by_a_second_session_during_a_batched_fetch(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 20)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))

    def expunge_some(event: ProgressEvent) -> None:
        if event.done == 5:  # UIDs 16-20 are stored; 1-15 are still to come
            expunge(dovecot, login, "INBOX", [2, 3, 9, 18])

    report = sync_mailbox(sqlite_app, box, batch_size=5, progress=expunge_some)
    assert report.error is None
    again = sync_mailbox(sqlite_app, box)
    # each expunged UID was either read (ahead) before it went, and is then marked gone
    # (UID 18 always is), or never fetched: nothing is lost, nothing is left live
    assert again.error is None and again.gone >= 1
    assert report.fetched - again.gone == 16
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
