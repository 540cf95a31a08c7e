"""A hostile SMTP server cannot hold a send or fill memory (connectors/smtp_bounded.py):
an endless multi-line reply stops at the reply cap, a reply dripped one byte at a time
stops at the time budget; each is a ProtocolError for that send, and a normal server
still works through the same code (tests/integration/outbox/test_smtp_connector.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from mailroom.connectors import smtp_bounded
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.limits import AnswerLimits
from mailroom.connectors.smtp import SmtpSender
from mailroom.errors import ProtocolError

Script = Callable[[socket.socket], None]


class ScriptedSmtp:
    """A one-connection-at-a-time SMTP server on 127.0.0.1 that runs `script` on each
    accepted socket (after which it hangs up)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):  # the client hung up, as it should
                self.script(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


def endless_ehlo(conn: socket.socket) -> None:
    conn.sendall(b"220 hostile ESMTP\r\n")
    conn.recv(1024)  # EHLO
    for _ in range(200_000):  # 5 MB unless the client stops reading
        conn.sendall(b"250-" + b"X" * 21 + b"\r\n")
    conn.sendall(b"250 OK\r\n")


def dripped_greeting(conn: socket.socket) -> None:
    for byte in b"220 " + b"s" * 200:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


@pytest.fixture
def hostile() -> Iterator[Callable[[Script], ScriptedSmtp]]:
    started: list[ScriptedSmtp] = []

    def start(script: Script) -> ScriptedSmtp:
        started.append(ScriptedSmtp(script))
        return started[-1]

    yield start
    for server in started:
        server.close()


def plain(port: int) -> ServerSettings:
    return ServerSettings(
        host="127.0.0.1",
        port=port,
        username="",
        password="",
        security=Security.NONE,
        timeout=5,
    )


def test_an_endless_multi_line_reply_stops_at_the_reply_cap(
    hostile: Callable[[Script], ScriptedSmtp],
) -> None:
    server = hostile(endless_ehlo)
    with pytest.raises(ProtocolError) as caught:
        SmtpSender.connect(plain(server.port))
    assert "a reply longer than 65,536 bytes" in caught.value.message
    assert "EHLO" in caught.value.message


def test_a_dripped_reply_stops_at_the_time_budget(
    hostile: Callable[[Script], ScriptedSmtp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp_bounded, "DEFAULT_LIMITS", AnswerLimits(command_seconds=1.0))
    server = hostile(dripped_greeting)
    with pytest.raises(ProtocolError) as caught:  # each byte within the socket timeout
        SmtpSender.connect(replace(plain(server.port), timeout=1.0))
    assert "too slowly" in caught.value.message
