"""Hostile and broken mail servers (issue 11, items 6, 7, 9): a member may point Mailroom
at any host. Whatever that host answers, the mailbox ends in a clear error with a backoff,
and every other mailbox syncs as usual. The hostile side is mailroom_testing's scripted
server; the well-behaved side is the real Dovecot."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import pytest

from mailroom.app import App
from mailroom.connectors import imap_bounded
from mailroom.connectors.limits import AnswerLimits
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.hostile_server import (
    Answer,
    HostileServer,
    PopMessage,
    answer_lines,
    endless_list,
    giant_literal,
)
from tests.helpers.mailbox_state import run_cli
from tests.helpers.sync_support import connect_mailbox, health, message_count, seed

MESSAGE = build_message(sender="jo@client.example", to="ann@acme.example", subject="Hostile")


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def hostile_mailbox(app: App, server: HostileServer, *, protocol: str = "imap") -> int:
    """A company of its own whose one mailbox is `server`; the mailbox's id."""
    with transaction(app.sessions) as session:
        company = add_company(session, name="Hostile", domains=["hostile.example"])
        user = add_user(session, company=company, email="mallory@hostile.example")
        box = add_mailbox(
            session,
            app.secrets,
            user=user,
            host=server.host,
            port=server.port,
            password="pw",
            protocol=protocol,
            security="none",
        )
        return box.id


def one_message_inbox(server: HostileServer, *, uidnext: bytes = b"2") -> None:
    """STATUS/EXAMINE of an INBOX holding one message (EXAMINE's UIDNEXT as given)."""
    server.on(
        "STATUS",
        answer_lines(
            b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)',
            b"{tag} OK STATUS done",
        ),
    )
    server.on(
        "EXAMINE",
        answer_lines(
            b"* 1 EXISTS",
            b"* OK [UIDVALIDITY 7] UIDs valid",
            b"* OK [UIDNEXT " + uidnext + b"] next UID",
            b"{tag} OK [READ-ONLY] EXAMINE done",
        ),
    )


def fetch_answering(uid: bytes, *, body: bytes = MESSAGE) -> Answer:
    """UID FETCH answers for one message whose UID is `uid` (sizes, then the body)."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        if b"BODY.PEEK[]" in args:
            yield b"* 1 FETCH (UID %s RFC822.SIZE %d FLAGS () BODY[] {%d}\r\n" % (
                uid,
                len(body),
                len(body),
            )
            yield body + b")\r\n"
        else:
            yield b"* 1 FETCH (UID %s RFC822.SIZE %d)\r\n" % (uid, len(body))
        yield b"{tag} OK FETCH done\r\n"

    return answer


@pytest.mark.parametrize(
    ("uidnext", "uid", "expected"),
    [
        (b"abc", b"1", "EXAMINE"),
        (b"2", b"99999999999999999999", "UID"),
        (b"99999999999999999999", b"1", "UIDNEXT"),
    ],
    ids=["garbage-uidnext", "overflowing-uid", "overflowing-uidnext"],
)
def test_garbage_numbers_fail_that_mailbox_only_and_sync_once_goes_on(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    hostile: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uidnext: bytes,
    uid: bytes,
    expected: str,
) -> None:
    one_message_inbox(hostile, uidnext=uidnext)
    hostile.on("UID FETCH", fetch_answering(uid))
    # the hostile mailbox comes first, so a crash in it would leave the other unsynced
    bad = hostile_mailbox(sqlite_app, hostile)
    first = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    seed(dovecot, imap_user[0], "INBOX", 3)

    code = run_cli(sqlite_app, monkeypatch, "sync", "--once")

    out = capsys.readouterr()
    assert code == 2, out  # a server's fault (errors.SystemFault)
    row = health(sqlite_app, bad)
    assert row.status == "error" and row.error_kind == "server_error", row.last_error
    assert row.next_attempt_at is not None, "retried after a backoff"
    assert row.sync_owner is None
    assert expected in (row.last_error or ""), row.last_error
    assert "Traceback" not in out.err
    good = health(sqlite_app, first)
    assert good.status == "ok" and message_count(sqlite_app) == 3


def test_an_overflowing_uid_is_refused_at_the_connector(
    sqlite_app: App, hostile: HostileServer
) -> None:
    one_message_inbox(hostile)
    hostile.on("UID FETCH", fetch_answering(b"4294967296"))  # 2^32: one past the range
    bad = hostile_mailbox(sqlite_app, hostile)

    report = sync_mailbox(sqlite_app, bad)

    assert report.error is not None
    assert "4294967296" in report.error.message and "UID" in report.error.message
    assert message_count(sqlite_app) == 0


def test_an_endless_list_fails_with_a_clear_error_in_bounded_memory(
    sqlite_app: App, hostile: HostileServer
) -> None:
    hostile.on("LIST", endless_list(limit=128 << 20))  # 128 MB of `* LIST` lines, then OK
    bad = hostile_mailbox(sqlite_app, hostile)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    report = sync_mailbox(sqlite_app, bad)

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.error is not None
    assert "LIST" in report.error.message and "folders" in report.error.message
    assert health(sqlite_app, bad).error_kind == "server_error"
    assert grown_mib < 100, f"peak RSS grew {grown_mib:.0f} MiB"  # a loose bound, not a timing


def test_a_giant_literal_is_refused_before_it_is_read(
    sqlite_app: App, hostile: HostileServer
) -> None:
    one_message_inbox(hostile)
    sizes = fetch_answering(b"1")
    body = giant_literal(3 << 30, limit=64 << 20)  # announces 3 GiB, sends 64 MiB, hangs up

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        return iter((body if b"BODY.PEEK[]" in args else sizes)(tag, args))

    hostile.on("UID FETCH", answer)
    bad = hostile_mailbox(sqlite_app, hostile)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    report = sync_mailbox(sqlite_app, bad)

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.error is not None and "literal" in report.error.message
    assert health(sqlite_app, bad).error_kind == "server_error"
    assert grown_mib < 300, f"peak RSS grew {grown_mib:.0f} MiB"


def test_pop3_message_with_a_line_longer_than_poplib_allows_is_stored(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    long_line = (
        b"From: jo@client.example\r\nTo: " + imap_user[0].encode() + b"@acme.example\r\n"
        b"Subject: One long HTML line\r\nMessage-ID: <long-line@client.example>\r\n"
        b"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
        b"<p>" + b"x" * 10_000 + b"</p>\r\n"
    )
    dovecot.append(imap_user[0], "INBOX", long_line)
    seed(dovecot, imap_user[0], "INBOX", 2)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol="pop3")

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert (report.fetched, report.messages) == (3, 3)
    row = health(sqlite_app, box)
    assert (row.progress_done, row.progress_total) == (3, 3)


def test_pop3_progress_total_does_not_grow_on_every_retry(sqlite_app: App) -> None:
    server = HostileServer(pop3=True)
    try:
        server.messages = [PopMessage(f"u{n}", MESSAGE) for n in range(3)]
        server.on("RETR", answer_lines(b"-ERR [SYS/TEMP] try later"))
        box = hostile_mailbox(sqlite_app, server, protocol="pop3")
        for _ in range(3):
            assert sync_mailbox(sqlite_app, box, force=True).error is not None
        row = health(sqlite_app, box)
        assert (row.progress_done, row.progress_total) == (0, 3)
    finally:
        server.close()


def test_hostile_pop3_line_over_2048_bytes_in_retr_is_read_whole(sqlite_app: App) -> None:
    body = MESSAGE.replace(b"\r\n\r\n", b"\r\n\r\n" + b"y" * 5000 + b"\r\n", 1)
    server = HostileServer(pop3=True)
    try:
        server.messages = [PopMessage("long-1", body)]
        box = hostile_mailbox(sqlite_app, server, protocol="pop3")
        report = sync_mailbox(sqlite_app, box)
        assert report.error is None, report.error
        assert report.messages == 1
    finally:
        server.close()


def test_an_unparseable_fetch_does_not_advance_the_cursor_past_the_message(
    sqlite_app: App, hostile: HostileServer
) -> None:
    one_message_inbox(hostile)

    def unparseable(tag: bytes, args: bytes) -> Iterator[bytes]:
        if b"BODY.PEEK[]" in args:  # the body comes as NIL: nothing to store
            yield b"* 1 FETCH (UID 1 RFC822.SIZE 100 FLAGS () BODY[] NIL)\r\n"
        else:
            yield b"* 1 FETCH (UID 1 RFC822.SIZE 100)\r\n"
        yield b"{tag} OK FETCH done\r\n"

    hostile.on("UID FETCH", unparseable)
    box = hostile_mailbox(sqlite_app, hostile)
    report = sync_mailbox(sqlite_app, box)
    assert report.error is not None or report.messages == 1, "message 1 was silently skipped"


def test_a_drip_feeding_server_cannot_keep_sync_once_busy(
    sqlite_app: App,
    hostile: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11, item 10: STATUS answered one byte every 50 ms, forever. With the command
    time budget lowered to half a second (connectors/deadline.py), `sync --once` ends with
    a clear server_error for that mailbox instead of waiting for ever."""
    monkeypatch.setattr(
        imap_bounded.BoundedReads, "limits", AnswerLimits(command_seconds=0.5, command_rate=1000)
    )

    def dripping(tag: bytes, args: bytes) -> Iterator[bytes]:
        yield b'* STATUS "INBOX" (MESSAGES 1'
        while True:
            time.sleep(0.05)
            yield b" "

    hostile.on("STATUS", dripping)
    bad = hostile_mailbox(sqlite_app, hostile)

    code = run_cli(sqlite_app, monkeypatch, "sync", "--once")

    out = capsys.readouterr()
    assert code == 2, out
    row = health(sqlite_app, bad)
    assert row.status == "error" and row.error_kind == "server_error", row.last_error
    assert "too slowly" in (row.last_error or "") and "STATUS" in (row.last_error or "")
    assert row.sync_owner is None and row.next_attempt_at is not None
    assert "Traceback" not in out.err
