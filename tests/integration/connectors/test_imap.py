"""The IMAP connector against a real Dovecot (tests/conftest_dovecot.py), seeded with real mail.

What Dovecot does to the bytes: the seeding helper APPENDs with imaplib, which turns every
bare LF or CR into CRLF on the wire; Dovecot stores LF (mail_save_crlf = no) and FETCH
BODY[] answers with CRLF. So a fetched message equals the seeded file with its line
endings made CRLF (`imap_bytes`), byte for byte otherwise: 8-bit bytes, CRLF files and
files without a final newline all come back unchanged.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailroom.connectors.base import FolderRole, Security, ServerSettings
from mailroom.connectors.imap import ImapSource, connect, default_sync_folders
from mailroom.errors import (
    AuthenticationError,
    NetworkError,
    ProtocolError,
    TLSError,
)
from mailroom_testing.dovecot import DovecotServer, imap_bytes
from mailroom_testing.hostile_server import HANG_UP, HostileServer

ENRON = Path("conversations/enron")
SEEDED = 500  # INBOX messages of the shared mailbox; every third one is \Seen


def enron_inbox(corpus: Path, count: int) -> list[bytes]:
    """`count` real messages, in a fixed order, from the custodians' inboxes."""
    files = sorted((corpus / ENRON).glob("*/inbox/**/*.eml"))
    if len(files) < count:
        pytest.fail(f"the corpus has only {len(files)} Enron messages")
    step = len(files) // count
    return [f.read_bytes() for f in files[::step][:count]]


def odd_mime(corpus: Path) -> list[bytes]:
    """Messages with CRLF line ends, 8-bit bytes or no final newline (no NUL: IMAP forbids it)."""
    picked: list[bytes] = []
    for path in sorted((corpus / "mime").rglob("*.eml")):
        data = path.read_bytes()
        if b"\0" in data or len(data) > 300_000:
            continue
        crlf, eight_bit, open_end = b"\r\n" in data, max(data, default=0) > 127, data[-1:] != b"\n"
        if crlf or eight_bit or open_end:
            picked.append(data)
        if len(picked) == 25:
            break
    return picked


@pytest.fixture(scope="module")
def mailbox(dovecot: DovecotServer, corpus: Path) -> dict[str, object]:
    """One user shared by the read-only tests: 500 INBOX messages, odd MIME in Sent."""
    user, password = "seeded-reader", "s3cret-Seeded-pw"
    dovecot.add_user(user, password)
    inbox = enron_inbox(corpus, SEEDED)
    for i, raw in enumerate(inbox):
        dovecot.append(user, "INBOX", raw, flags=("\\Seen",) if i % 3 == 0 else ())
    sent = odd_mime(corpus)
    for raw in sent:
        dovecot.append(user, "Sent", raw, flags=("\\Seen",))
    dovecot.create_folder(user, "Projects/2024")  # makes "Projects" a \Noselect parent
    return {"user": user, "password": password, "inbox": inbox, "sent": sent}


def settings(server: DovecotServer, user: str, password: str, **kw: object) -> ServerSettings:
    base = ServerSettings(
        host=server.host, port=server.imaps_port, username=user, password=password, timeout=10
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def source(dovecot: DovecotServer, mailbox: dict[str, object]) -> Iterator[ImapSource]:
    s = settings(dovecot, str(mailbox["user"]), str(mailbox["password"]))
    with ImapSource.connect(s, ssl_context=dovecot.ssl_context()) as src:
        yield src


# -- connecting -----------------------------------------------------------------------------


@pytest.mark.parametrize("security", [Security.SSL, Security.STARTTLS, Security.NONE])
def test_connects_with_each_security(
    dovecot: DovecotServer, imap_user: tuple[str, str], security: Security
) -> None:
    port = dovecot.imaps_port if security is Security.SSL else dovecot.imap_port
    s = settings(dovecot, *imap_user, port=port, security=security)
    src = connect(s, ssl_context=dovecot.ssl_context())
    try:
        sock = src._require().socket()  # type: ignore[attr-defined]
        assert isinstance(sock, ssl.SSLSocket) is (security is not Security.NONE)
        assert {f.name for f in src.list_folders()} >= {"INBOX", "Sent"}
    finally:
        src.close()
    src.close()  # idempotent
    with pytest.raises(NetworkError):
        src.list_folders()


def test_wrong_password_is_an_authentication_error_without_the_password(
    dovecot: DovecotServer, imap_user: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, _ = imap_user
    wrong = "Wr0ng-pass-phrase-77"
    with pytest.raises(AuthenticationError) as info:
        connect(settings(dovecot, user, wrong), ssl_context=dovecot.ssl_context())
    err = info.value
    assert str(err).startswith(
        f"The IMAP server 127.0.0.1 refused the user name or password for {user}"
    )
    assert err.hint == "Check the password; with two-factor sign-in, use an app password."
    assert err.user_fixable
    everything = "".join(traceback.format_exception(err)) + str(err.hint) + caplog.text
    assert wrong not in everything
    assert "LOGIN" in caplog.text  # imapclient logged the command, redacted


def test_untrusted_self_signed_certificate_is_a_tls_error(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    for security, port in (
        (Security.SSL, dovecot.imaps_port),
        (Security.STARTTLS, dovecot.imap_port),
    ):
        with pytest.raises(TLSError) as info:
            connect(settings(dovecot, *imap_user, port=port, security=security))
        assert "--allow-self-signed" in str(info.value.hint)
        assert "certificate" in str(info.value)
        assert imap_user[1] not in str(info.value)


def test_allow_self_signed_skips_verification(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    with connect(settings(dovecot, *imap_user, allow_self_signed=True)) as src:
        assert src.folder_status("INBOX").messages == 0


def test_tls_to_a_plain_port_is_a_tls_error(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    with pytest.raises(TLSError):
        connect(
            settings(dovecot, *imap_user, port=dovecot.imap_port), ssl_context=dovecot.ssl_context()
        )


def test_closed_port_is_a_network_error(imap_user: tuple[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = ServerSettings(host="127.0.0.1", port=port, username=imap_user[0], password=imap_user[1])
    with pytest.raises(NetworkError) as info:
        connect(s)
    assert "refused" in str(info.value) and info.value.hint


def test_silent_server_is_a_network_error() -> None:
    with socket.socket() as listener:  # accepts (in the kernel) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        s = ServerSettings("127.0.0.1", port, "u", "p", security=Security.NONE, timeout=0.3)
        with pytest.raises(NetworkError, match="did not answer in time"):
            connect(s)


def test_starttls_missing_is_refused_not_downgraded() -> None:
    received: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        thread = threading.Thread(target=_imap_without_starttls, args=(listener, received))
        thread.start()
        s = ServerSettings(
            "127.0.0.1", listener.getsockname()[1], "u", "pw-never-sent", Security.STARTTLS
        )
        with pytest.raises(TLSError, match="does not offer STARTTLS"):
            connect(s)
        thread.join(5)
    assert received and not any(b"LOGIN" in line or b"pw-never-sent" in line for line in received)


def _imap_without_starttls(listener: socket.socket, received: list[bytes]) -> None:
    conn, _ = listener.accept()
    with conn, conn.makefile("rb") as lines:
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plain only\r\n")
        for line in lines:
            received.append(line)
            tag, _, command = line.strip().partition(b" ")
            if command.upper() == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif command.upper() == b"LOGOUT":
                conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                return
            else:
                conn.sendall(tag + b" BAD not here\r\n")


def test_dropped_connection_is_a_network_error(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    with connect(settings(dovecot, *imap_user), ssl_context=dovecot.ssl_context()) as src:
        dovecot.doveadm("kick", imap_user[0])
        # The kick takes effect when the server's process gets to it: until then a command
        # may still be answered (on a loaded machine). Any other error fails the test.
        with pytest.raises(NetworkError):
            for _ in range(200):
                src.list_folders()
                time.sleep(0.05)


def test_a_connection_dropped_during_login_is_a_network_error_not_a_wrong_password() -> None:
    server = HostileServer()
    server.on("LOGIN", lambda tag, args: [HANG_UP])
    try:
        plain = ServerSettings(
            host=server.host,
            port=server.port,
            username="u",
            password="p",
            security=Security.NONE,
        )
        with pytest.raises(NetworkError) as caught:
            ImapSource.connect(plain)
        assert "dropped the connection" in caught.value.message
        assert not isinstance(caught.value, AuthenticationError)
    finally:
        server.close()


def test_no_answer_is_a_protocol_error(source: ImapSource) -> None:
    with pytest.raises(ProtocolError):
        list(source.fetch_since("No Such Folder", after_uid=0))


# -- folders --------------------------------------------------------------------------------


def test_list_folders_uses_special_use_and_skips_noselect(source: ImapSource) -> None:
    folders = {f.name: f for f in source.list_folders()}
    assert "Projects" not in folders  # \Noselect parent of Projects/2024
    assert folders["Projects/2024"].role is FolderRole.OTHER
    assert folders["INBOX"].role is FolderRole.INBOX
    assert folders["Sent"].role is FolderRole.SENT
    assert (folders["Drafts"].role, folders["Trash"].role, folders["Junk"].role) == (
        FolderRole.DRAFTS,
        FolderRole.TRASH,
        FolderRole.JUNK,
    )
    assert all(f.selectable and f.delimiter == "/" for f in folders.values())
    assert default_sync_folders(list(folders.values())) == ["INBOX", "Sent"]


def test_folder_status(source: ImapSource, mailbox: dict[str, object]) -> None:
    status = source.folder_status("INBOX")
    assert status.messages == SEEDED
    assert status.uidnext == SEEDED + 1
    assert status.uidvalidity > 0
    assert status.highestmodseq is not None and status.highestmodseq >= 1  # CONDSTORE
    assert source.folder_status("Drafts").messages == 0


# -- fetching -------------------------------------------------------------------------------


def test_fetch_since_returns_every_message_byte_identical_and_changes_nothing(
    dovecot: DovecotServer, source: ImapSource, mailbox: dict[str, object]
) -> None:
    user = str(mailbox["user"])
    before = dovecot.flags(user, "INBOX")
    assert sum("\\Seen" in f for f in before.values()) == (SEEDED + 2) // 3
    status = source.folder_status("INBOX")

    batches = list(source.fetch_since("INBOX", after_uid=0, batch_size=200))

    assert [len(b) for b in batches] == [200, 200, 100]
    messages = [m for b in batches for m in b]
    assert [m.uid for m in messages] == list(range(1, SEEDED + 1))
    assert {m.uidvalidity for m in messages} == {status.uidvalidity}
    assert {m.folder for m in messages} == {"INBOX"}
    inbox = mailbox["inbox"]
    assert isinstance(inbox, list)
    for message, raw in zip(messages, inbox, strict=True):
        assert message.data == imap_bytes(raw)
        assert set(message.flags) == before[message.uid]
        assert message.internaldate is not None
    assert dovecot.flags(user, "INBOX") == before
    after = source.folder_status("INBOX")
    assert (after.messages, after.uidnext) == (status.messages, status.uidnext)


def test_odd_mime_comes_back_byte_identical(
    dovecot: DovecotServer, source: ImapSource, mailbox: dict[str, object]
) -> None:
    sent = mailbox["sent"]
    assert isinstance(sent, list) and len(sent) >= 10
    messages = [m for b in source.fetch_since("Sent", after_uid=0, batch_size=7) for m in b]
    assert [m.data for m in messages] == [imap_bytes(raw) for raw in sent]
    assert all(m.flags == ("\\Seen",) for m in messages)


def test_fetch_since_resumes_after_a_uid(source: ImapSource) -> None:
    batches = list(source.fetch_since("INBOX", after_uid=470, batch_size=8))
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    assert [m.uid for b in batches for m in b] == list(range(471, SEEDED + 1))
    # "UID n:*" always matches the highest UID: it must not come back once it is stored.
    assert list(source.fetch_since("INBOX", after_uid=SEEDED, batch_size=8)) == []
    assert list(source.fetch_since("INBOX", after_uid=SEEDED + 50)) == []
    assert list(source.fetch_since("Drafts", after_uid=0)) == []
    with pytest.raises(ValueError):
        list(source.fetch_since("INBOX", after_uid=0, batch_size=0))


def test_fetch_sees_new_mail_and_leaves_unseen_unseen(
    dovecot: DovecotServer, imap_user: tuple[str, str], corpus: Path
) -> None:
    user = imap_user[0]
    raws = enron_inbox(corpus, 6)
    with connect(settings(dovecot, *imap_user), ssl_context=dovecot.ssl_context()) as src:
        for raw in raws[:3]:
            dovecot.append(user, "INBOX", raw)
        first = [m for b in src.fetch_since("INBOX", after_uid=0) for m in b]
        for raw in raws[3:]:
            dovecot.append(user, "INBOX", raw, flags=("\\Flagged",))
        second = [m for b in src.fetch_since("INBOX", after_uid=first[-1].uid) for m in b]
    assert [m.uid for m in first] == [1, 2, 3]
    assert [m.uid for m in second] == [4, 5, 6]
    assert [m.data for m in first + second] == [imap_bytes(r) for r in raws]
    assert dovecot.flags(user, "INBOX") == {1: set(), 2: set(), 3: set()} | {
        uid: {"\\Flagged"} for uid in (4, 5, 6)
    }


def test_dovecot_fixture_serves_pop3_too(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    import poplib

    for pop in (
        poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5),
        poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=dovecot.ssl_context(), timeout=5),
    ):
        pop.user(imap_user[0])
        pop.pass_(imap_user[1])
        assert pop.stat() == (0, 0)
        pop.quit()
