"""Every cap of connectors.limits.AnswerLimits, hit for real by the scripted hostile server
(issue 11, item 6): each ends the command with a ProtocolError naming the cap, for that
connection only. The caps are lowered here so a test sends kilobytes, not gigabytes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailroom.connectors import imap_bounded, pop3
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.connectors.limits import AnswerLimits
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.errors import ProtocolError
from mailroom_testing.hostile_server import Answer, HostileServer, PopMessage, answer_lines, drip

SMALL = AnswerLimits(line=4096, message=64 << 10, folders=50, untagged=200, command=256 << 10)


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_bounded.BoundedReads, "limits", SMALL)
    monkeypatch.setattr(pop3._BoundedPop3, "limits", SMALL)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    hostile = HostileServer()
    yield hostile
    hostile.close()


def settings(server: HostileServer) -> ServerSettings:
    return ServerSettings(
        host=server.host, port=server.port, username="u", password="p", security=Security.NONE
    )


def endless(line: bytes) -> Answer:
    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        for _ in range(100_000):
            yield line + b"\r\n"
        yield b"{tag} OK done\r\n"

    return answer


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize(
    ("command", "answer", "cap"),
    [
        ("UID SEARCH", endless(b"* OK still searching"), "more than 200 untagged responses"),
        ("UID SEARCH", answer_lines(b"* SEARCH " + b"1 " * 5000), "a line longer than 4,096"),
        ("LIST", endless(b'* LIST () "/" "x"'), "more than 50 folders"),
    ],
)
def test_each_imap_cap_is_a_protocol_error_naming_it(
    server: HostileServer, command: str, answer: Answer, cap: str
) -> None:
    server.on(command, answer)
    source = ImapSource.connect(settings(server))
    try:
        with pytest.raises(ProtocolError) as caught:
            if command == "LIST":
                source.list_folders()
            else:
                source.search_addresses("INBOX", ["jo@client.example"])
        assert cap in caught.value.message and command.split()[0] in caught.value.message
    finally:
        source.close()


@pytest.mark.usefixtures("small_limits")
def test_bytes_per_command_are_capped_across_literals(server: HostileServer) -> None:
    def many_literals(tag: bytes, args: bytes) -> Iterator[bytes]:
        for n in range(1, 100):  # 99 literals of 60 KiB: each under the message cap
            yield b"* %d FETCH (UID %d BODY[] {61440}\r\n" % (n, n) + b"x" * 61440 + b")\r\n"
        yield b"{tag} OK FETCH done\r\n"

    server.on("UID FETCH", many_literals)
    source = ImapSource.connect(settings(server))
    try:
        with pytest.raises(ProtocolError, match="more than 262,144 bytes"):
            source.fetch_uids("INBOX", list(range(1, 100)))
    finally:
        source.close()


@pytest.mark.usefixtures("small_limits")
def test_a_pop3_retr_over_the_message_size_limit_is_refused() -> None:
    with HostileServer(pop3=True) as server:
        server.messages = [PopMessage("big", b"Subject: big\r\n\r\n" + b"y" * 70_000)]
        box = Pop3Mailbox.connect(settings(server))
        with pytest.raises(ProtocolError, match="line longer than 65,536 bytes"):
            box.retrieve(1)
        box.close()


def test_pop3_garbage_listing_numbers_are_protocol_errors() -> None:
    with HostileServer(pop3=True) as server:
        server.on("UIDL", answer_lines(b"+OK", b"1 abc", b"99999999999 def", b"."))
        box = Pop3Mailbox.connect(settings(server))
        with pytest.raises(ProtocolError, match="99999999999"):
            box.listing()
        box.close()


def test_a_drip_fed_answer_is_read_whole(server: HostileServer) -> None:
    """The fixture's drip feed (for the slow-server tests): one byte at a time still parses."""
    server.on("LOGIN", drip(b"{tag} OK LOGIN done\r\n", every=0.005))
    source = ImapSource.connect(settings(server))
    try:
        assert [f.name for f in source.list_folders()] == ["INBOX"]
    finally:
        source.close()
