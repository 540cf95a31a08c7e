"""smtplib with every server reply bounded in time and size (issue 11's rule for IMAP and
POP3, applied to SMTP).

smtplib reads a reply line by line, each line within the socket timeout and at most 8 KiB,
but neither the number of lines of a multi-line reply (`250-…` forever fills memory) nor
the time a reply takes (one byte every few seconds keeps every read under the timeout and
holds the send, and the worker slot, for as long as the server likes) is bounded. Here each
reply has the time budget of connectors/deadline.py (at least the connection's own timeout,
since a server may think for that long before its answer to the end of DATA) and at most
`REPLY_BYTES`; past either, the read stops with AnswerTooSlow or AnswerTooLarge, which the
sender translates into a ProtocolError for this message only.
"""

from __future__ import annotations

import smtplib
import socket
from typing import TYPE_CHECKING, Any

from mailroom.connectors.deadline import DeadlineReader
from mailroom.connectors.limits import DEFAULT_LIMITS, AnswerLimits, AnswerTooLarge

REPLY_BYTES = 64 << 10  # a whole reply; a real EHLO answer is under 1 KiB


class _ReplyFile:
    """The reply reads of one SMTP connection (`file.readline`, all smtplib does with its
    file), each reply within its budget of time and bytes."""

    def __init__(self, sock: socket.socket, limits: AnswerLimits) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._deadline = DeadlineReader(limits)
        self._left = REPLY_BYTES

    def start(self) -> None:
        """A new reply: its budgets start now."""
        self._deadline.start()
        self._left = REPLY_BYTES

    def readline(self, limit: int = -1) -> bytes:
        """One line of the reply, as `io.BufferedReader.readline(limit)` would return it."""
        cap = limit - 1 if limit > 0 else REPLY_BYTES
        line = self._deadline.readline(self._file, self._sock, cap)
        self._left -= len(line)
        if self._left < 0:
            raise AnswerTooLarge(f"a reply longer than {REPLY_BYTES:,} bytes")
        return line

    def close(self) -> None:
        """Close the socket file (smtplib's close does)."""
        self._file.close()


class _BoundedReplies:
    """Overrides smtplib's `getreply` to read through a `_ReplyFile`, made afresh for each
    socket (STARTTLS replaces it and sets `file` to None)."""

    sock: socket.socket | None
    file: Any
    timeout: float

    if TYPE_CHECKING:

        def close(self) -> None:
            """smtplib.SMTP's."""

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's getreply, its reads bounded (see the module doc)."""
        if self.sock is not None and not isinstance(self.file, _ReplyFile):
            seconds = max(DEFAULT_LIMITS.command_seconds, float(self.timeout or 0))
            limits = AnswerLimits(command_seconds=seconds)
            self.file = _ReplyFile(self.sock, limits)
        if isinstance(self.file, _ReplyFile):
            self.file.start()
        try:
            reply: tuple[int, bytes] = super().getreply()  # type: ignore[misc]
        except AnswerTooLarge:
            self.close()  # the rest of the reply is still coming: nothing more to say
            raise
        return reply


class BoundedSmtp(_BoundedReplies, smtplib.SMTP):
    """smtplib.SMTP with bounded replies."""


class BoundedSmtpSsl(_BoundedReplies, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL with bounded replies."""
