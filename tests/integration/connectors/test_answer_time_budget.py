"""A server that drips its answer cannot hold a sync forever (issue 11, item 10).

Each command's answer must arrive at a minimum average throughput
(connectors/deadline.py): `max(command_seconds, received / command_rate)`. The budget is
lowered here (half a second, 1,000 bytes a second) so a test waits a second, not minutes;
the outcome is asserted (a ProtocolError naming the command, or the whole answer), never
a duration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mailroom.connectors import imap_bounded, pop3
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.connectors.limits import AnswerLimits
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.errors import ProtocolError
from mailroom_testing.hostile_server import Answer, HostileServer

SHORT = AnswerLimits(command_seconds=0.5, command_rate=1_000)


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_bounded.BoundedReads, "limits", SHORT)
    monkeypatch.setattr(pop3._BoundedPop3, "limits", SHORT)


def settings(server: HostileServer) -> ServerSettings:
    return ServerSettings(
        host=server.host, port=server.port, username="u", password="p", security=Security.NONE
    )


def endless_drip(first: bytes, *, every: float = 0.05) -> Answer:
    """`first`, then one byte every `every` seconds until the client hangs up."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        yield first
        while True:
            time.sleep(every)
            yield b"x"

    return answer


def steady(lines: list[bytes], *, chunk: int, every: float) -> Answer:
    """The lines, `chunk` bytes every `every` seconds: slow, but above the minimum rate."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        data = b"".join(line + b"\r\n" for line in lines).replace(b"{tag}", tag)
        for start in range(0, len(data), chunk):
            time.sleep(every)
            yield data[start : start + chunk]

    return answer


@pytest.mark.usefixtures("short_budget")
@pytest.mark.parametrize("first", [b'* LIST () "/" "INB', b"* 1 FETCH (UID 1 BODY[] {4096}\r\n"])
def test_a_drip_fed_imap_answer_fails_that_command_with_a_clear_server_error(
    first: bytes,
) -> None:
    with HostileServer() as server:
        server.on("LIST", endless_drip(first))
        server.on("UID FETCH", endless_drip(first))
        source = ImapSource.connect(settings(server))
        try:
            with pytest.raises(ProtocolError) as caught:
                if first.startswith(b"* LIST"):
                    source.list_folders()
                else:
                    source.fetch_uids("INBOX", [1])
        finally:
            source.close()
    assert "too slowly" in caught.value.message
    assert "Mailroom stopped waiting" in caught.value.message
    assert caught.value.hint is not None and "slower" in caught.value.hint


@pytest.mark.usefixtures("short_budget")
def test_a_slow_answer_above_the_minimum_rate_is_read_whole() -> None:
    """The budget grows with what arrives: 4 kB at ~5 kB/s outlasts the 0.5 s floor, and
    is still read, because 1,000 bytes a second is all that is asked."""
    folders = [b'* LIST () "/" "folder-%03d-%s"' % (n, b"p" * 20) for n in range(100)]
    with HostileServer() as server:
        server.on("LIST", steady([*folders, b"{tag} OK LIST done"], chunk=250, every=0.05))
        source = ImapSource.connect(settings(server))
        try:
            names = [f.name for f in source.list_folders()]
        finally:
            source.close()
    assert len(names) == 100


@pytest.mark.usefixtures("short_budget")
def test_a_drip_fed_pop3_retr_fails_with_a_clear_server_error() -> None:
    with HostileServer(pop3=True) as server:
        server.on("RETR", endless_drip(b"+OK 100 octets\r\nSubject: slow\r\n"))
        box = Pop3Mailbox.connect(settings(server))
        try:
            with pytest.raises(ProtocolError, match="too slowly"):
                box.retrieve(1)
        finally:
            box.close()


@pytest.mark.usefixtures("short_budget")
def test_a_drip_fed_login_is_a_server_error_not_a_refused_password() -> None:
    """A LOGIN answer that never ends must not count as a refused password (which would
    lead to an auth failure and, repeated, to disabling the mailbox)."""
    with HostileServer() as server:
        server.on("LOGIN", endless_drip(b"* OK still thinking"))
        with pytest.raises(ProtocolError) as caught:
            ImapSource.connect(settings(server))
    assert "too slowly" in caught.value.message and "LOGIN" in caught.value.message


@pytest.mark.usefixtures("short_budget")
def test_a_drip_fed_greeting_fails_the_connect_with_a_clear_server_error() -> None:
    with HostileServer() as server:
        server.greeting = endless_drip(b"* OK [CAPABILITY IMAP4rev1] hello")
        with pytest.raises(ProtocolError, match="too slowly"):
            ImapSource.connect(settings(server))
