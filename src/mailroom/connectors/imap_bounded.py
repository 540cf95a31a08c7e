"""imaplib with every answer capped (limits.AnswerLimits): the reader under IMAPClient.

imaplib reads a server's answer with three methods: `readline` (one line, capped at 1 MB
by imaplib but not by IMAPClient's own TLS class before 3.0), `read(size)` (a literal of
whatever size the server announced: `{3221225472}` makes it wait for 3 GiB), and
`_append_untagged` (every untagged response of a command, kept in a list until the
command ends: an endless `* LIST` grows it forever). `BoundedReads` overrides those three,
and `_command` to start each command's budget afresh, so one answer costs at most the
limits: a line, a literal (the message size limit), the folders of a LIST, the untagged
responses and the bytes of one command. IDLE (RFC 2177) is one command whose pushes all
count towards one budget, re-opened at every refresh.

Every command (the greeting too) also has a time budget, `deadline.DeadlineReader`:
its answer must come at a minimum average throughput, or the read stops with
`AnswerTooSlow` (a drip-feeding server cannot hold a sync forever). IDLE has none: it
waits for pushes by design, on IMAPClient's non-blocking socket, in its own thread.

A cap exceeded raises `AnswerTooLarge` and shuts the socket: the rest of the answer is
never read, and the half-read session cannot be reused by mistake. `BoundedIMAPClient` is
IMAPClient building these classes instead of its own (its `_create_IMAP4`, a private
method like `_imap`: decision 0001; an IMAPClient upgrade that renames it fails loudly in
tests/integration/sync/test_hostile_servers.py).
"""

from __future__ import annotations

import contextlib
import imaplib
import io
import socket
from typing import Any, NoReturn, cast

from imapclient import IMAPClient, imap4, tls

from mailroom.connectors.deadline import AnswerTooSlow, DeadlineReader
from mailroom.connectors.limits import DEFAULT_LIMITS, AnswerLimits, AnswerTooLarge

_FOLDER_RESPONSES = ("LIST", "LSUB")


class BoundedReads(imaplib.IMAP4):
    """An imaplib connection whose every read is counted against `limits` per command."""

    limits: AnswerLimits = DEFAULT_LIMITS
    # class defaults: the constructor already reads the greeting and asks CAPABILITY
    _spent = 0
    _untagged = 0
    _folders = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._clock = DeadlineReader(self.limits)
        self._clock.start()  # the greeting's budget
        super().__init__(*args, **kwargs)

    def _command(self, name: str, *args: Any) -> bytes:
        self._spent = self._untagged = self._folders = 0
        if name == "IDLE":
            self._clock.stop()  # waits for pushes by design (module doc)
        else:
            self._clock.start()
        tag: bytes = super()._command(name, *args)  # type: ignore[misc]
        return tag

    def readline(self) -> bytes:
        """One line, at most `limits.line` bytes, within the command's time budget."""
        limit = self.limits.line
        try:
            line = self._clock.readline(self._reader(), self._socket(), limit)
        except AnswerTooSlow as slow:
            self._refuse(slow)
        if len(line) > limit:
            self._refuse(f"a line longer than {limit:,} bytes")
        self._spend(len(line))
        return line

    def read(self, size: int) -> bytes:
        """A literal of `size` bytes, refused before reading when over `limits.message`."""
        if size > self.limits.message:
            self._refuse(
                f"a literal of {size:,} bytes, over the message size limit of "
                f"{self.limits.message:,} bytes"
            )
        self._spend(size)
        try:
            return self._clock.read(self._reader(), self._socket(), size)
        except AnswerTooSlow as slow:
            self._refuse(slow)

    def _append_untagged(self, typ: str, dat: bytes | None) -> None:
        self._untagged += 1
        if self._untagged > self.limits.untagged:
            self._refuse(f"more than {self.limits.untagged:,} untagged responses")
        if typ in _FOLDER_RESPONSES:
            self._folders += 1
            if self._folders > self.limits.folders:
                self._refuse(f"more than {self.limits.folders:,} folders")
        super()._append_untagged(typ, dat)  # type: ignore[misc]

    def _reader(self) -> io.BufferedReader:
        return cast(io.BufferedReader, self.file)

    def _socket(self) -> socket.socket | None:
        sock = getattr(self, "sock", None)
        return sock if isinstance(sock, socket.socket) else None

    def _spend(self, nbytes: int) -> None:
        self._spent += nbytes
        if self._spent > self.limits.command:
            self._refuse(f"more than {self.limits.command:,} bytes")

    def _refuse(self, what: str | AnswerTooLarge) -> NoReturn:
        sock = self._socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        raise what if isinstance(what, AnswerTooLarge) else AnswerTooLarge(what)


class BoundedTLS(BoundedReads, tls.IMAP4_TLS):  # type: ignore[misc]
    """IMAPClient's implicit-TLS connection, bounded."""


class BoundedPlain(BoundedReads, imap4.IMAP4WithTimeout):  # type: ignore[misc]
    """IMAPClient's plain (and STARTTLS) connection, bounded."""


class BoundedIMAPClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient on `BoundedTLS`/`BoundedPlain` instead of its unbounded classes."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return BoundedTLS(self.host, self.port, self.ssl_context, timeout)
        return BoundedPlain(self.host, self.port, timeout)
