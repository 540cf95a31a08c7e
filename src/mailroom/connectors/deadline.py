"""A time budget per command: a server that drips its answer cannot hold a sync forever.

The answer caps (limits.py) bound how much a server may send, not how slowly: a server
that sends one byte every 5 s stays under every socket timeout (each read returns in
time) and under every size cap for weeks, holding `sync --once` or a scheduler slot all
that while. So every command's answer must arrive at a minimum average throughput: it
has `max(AnswerLimits.command_seconds, received / AnswerLimits.command_rate)` seconds,
where `received` is the bytes of the answer read so far (60 s, then 10 kB/s on average by
default). An announced literal size (`{N}`) does not extend the budget: it is only the
server's word, and `{268435456}` would otherwise buy a dripping server 7 hours. Past the
budget the read stops with `AnswerTooSlow`, a kind of
`AnswerTooLarge`, so every caller's handling of a refused answer applies (a
`server_error` for that mailbox only).

`DeadlineReader` enforces it below the buffered socket file: before each `recv` the
socket's timeout is lowered to what is left of the budget, and lines are read with
`peek`, so no single `recv` (and so no drip) can wait past the deadline.
"""

from __future__ import annotations

import functools
import io
import socket
import time
from collections.abc import Callable

from mailroom.connectors.limits import TOO_LARGE_HINT, AnswerLimits, AnswerTooLarge
from mailroom.errors import ProtocolError

TOO_SLOW_HINT = (
    "The server answered far slower than any working mail server (Mailroom's time budget "
    "per command, connectors/deadline.py, keeps one slow server from holding a sync); "
    "Mailroom retries later. If it persists, the server or the network to it is overloaded "
    "or hostile: check the host with its administrator."
)


class AnswerTooSlow(AnswerTooLarge):
    """A command's answer did not arrive within its time budget (see the module doc)."""

    def __init__(self, seconds: float, rate: int) -> None:
        super().__init__(
            f"its answer too slowly (not complete after {seconds:,.0f} s; Mailroom expects "
            f"at least {rate:,} bytes a second)"
        )
        self.seconds = seconds


class DeadlineReader:
    """Reads of one connection's socket file, each within its command's time budget.

    `start()` opens a command's budget; `stop()` lifts it (IDLE, which waits by design).
    `readline` and `read` then read from `file` (a buffered socket file) through `sock`,
    lowering the socket's timeout before each `recv` and putting it back afterwards.
    """

    def __init__(self, limits: AnswerLimits) -> None:
        self.limits = limits
        self.started: float | None = None
        self.received = 0

    def start(self) -> None:
        """A new command: its budget starts now."""
        self.started = time.monotonic()
        self.received = 0

    def stop(self) -> None:
        """No budget until the next `start` (a command that waits for pushes)."""
        self.started = None

    def readline(self, file: io.BufferedReader, sock: socket.socket | None, limit: int) -> bytes:
        """One line of at most `limit` + 1 bytes (the caller refuses a longer one)."""
        if self.started is None or sock is None:
            return file.readline(limit + 1)
        line = bytearray()
        while len(line) <= limit:
            chunk = self._wait(sock, len(line), lambda: file.peek(1))
            if not chunk:
                break  # EOF
            room = limit + 1 - len(line)
            end = chunk.find(b"\n", 0, room)
            line += file.read(end + 1 if end >= 0 else min(len(chunk), room))
            if end >= 0:
                break
        self.received += len(line)
        return bytes(line)

    def read(self, file: io.BufferedReader, sock: socket.socket | None, size: int) -> bytes:
        """`size` bytes (fewer at EOF)."""
        if self.started is None or sock is None:
            return file.read(size)
        data = bytearray()
        while len(data) < size:
            chunk = self._wait(sock, len(data), functools.partial(file.read1, size - len(data)))
            if not chunk:
                break
            data += chunk
        self.received += len(data)
        return bytes(data)

    def _wait(self, sock: socket.socket, partial: int, step: Callable[[], bytes]) -> bytes:
        """`step()` (at most one `recv`) within what is left of the budget."""
        assert self.started is not None
        received = self.received + partial
        allowed = max(self.limits.command_seconds, received / self.limits.command_rate)
        left = self.started + allowed - time.monotonic()
        if left <= 0:
            raise AnswerTooSlow(allowed, self.limits.command_rate)
        before = sock.gettimeout()
        sock.settimeout(left if before is None else min(before, left))
        try:
            return step()
        except TimeoutError:
            if time.monotonic() - self.started < allowed:
                raise  # the connection's own read timeout: a network error as before
            raise AnswerTooSlow(allowed, self.limits.command_rate) from None
        finally:
            sock.settimeout(before)


def refused_answer(exc: AnswerTooLarge, server: str, action: str) -> ProtocolError:
    """The ProtocolError for an answer stopped by a cap or the time budget, in the words
    every protocol uses ("The IMAP server h:p sent … in answer to FETCH: …")."""
    if isinstance(exc, AnswerTooSlow):
        return ProtocolError(
            f"{server} sent {exc.what} in answer to {action}: Mailroom stopped waiting",
            hint=TOO_SLOW_HINT,
        )
    return ProtocolError(
        f"{server} sent {exc.what} in answer to {action}: Mailroom stopped reading it",
        hint=TOO_LARGE_HINT,
    )
