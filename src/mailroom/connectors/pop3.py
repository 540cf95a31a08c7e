"""POP3 mailbox source (RFC 1939, STLS from RFC 2595, response codes from RFC 2449/3206).

POP3 has one folder and numbers its messages per session; the only stable name of a
message is its UIDL (RFC 1939 §7), so the engine diffs UIDLs against what it has seen.
Nothing here changes the maildrop unless `delete` is called, and even then RFC 1939 §6
applies: DELE only marks, the server removes marked messages at QUIT (the UPDATE state).
A connection lost before QUIT deletes nothing — which is what makes "delete only after
the batch is committed" safe: the caller marks after its commit, then quits.

Errors become mailroom errors: `-ERR [AUTH]` (RFC 3206) or any refused PASS is an
AuthenticationError; `[IN-USE]`/`[SYS/TEMP]` are the server's, retried later; a RETR
refused without a response code is that message's (`MessageRefused`: the sync retries,
then quarantines it, sync/quarantine.py); TLS and
socket failures read as for every protocol (connectors.transport), with POP3's ports in
the hint (995 / 110). The password never appears in a message.

OAuth: with an access token the login is `AUTH XOAUTH2` (or OAUTHBEARER), RFC 5034 SASL,
as Google's and Microsoft's POP3 documentation shows it: the command alone, the server's
empty `+ ` challenge, then the base64 response on a line of its own (an initial response
on the command line could pass POP3's 255-octet limit, RFC 5034 §4, with a long token).
poplib has no SASL helper, so `_sasl_auth` speaks it over poplib's own line functions.
A refused token is a TokenRejected.

Bounded reads: poplib refuses any line over 2,048 bytes ("line too long"), so one HTML
message with a long line used to stop a maildrop's sync at that message forever. The
connection classes here (`_BoundedPop3`, per connection, poplib's module-wide `_MAXLINE`
untouched) keep 2,048 bytes for status lines and LIST/UIDL rows, and read a RETR answer
line by line up to the message size limit (limits.AnswerLimits.message) for the whole
message; every multi-line answer is capped in bytes and lines. Past a cap: AnswerTooLarge,
a ProtocolError for that mailbox. Message numbers and sizes are 32-bit numbers (limits.py).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import poplib
import socket
import ssl
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol, cast

from mailroom.connectors import sasl
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.deadline import DeadlineReader, refused_answer
from mailroom.connectors.limits import (
    DEFAULT_LIMITS,
    AnswerLimits,
    AnswerTooLarge,
    number,
)
from mailroom.connectors.transport import (
    AUTH_HINT,
    NETWORK_HINT,
    Connection,
    credentials_refused,
    tls_context_for,
)
from mailroom.errors import (
    CapabilityError,
    MailroomError,
    MailServerError,
    NetworkError,
    ProtocolError,
    TLSError,
)

log = logging.getLogger(__name__)
_SASL_STEPS = 4  # XOAUTH2/OAUTHBEARER take two at most; a server asking more is broken


class _Wire(Protocol):
    """poplib.POP3's line functions (private, untyped in typeshed) that SASL needs."""

    def _shortcmd(self, line: str) -> bytes: ...
    def _putcmd(self, line: str) -> None: ...
    def _getresp(self) -> bytes: ...


def _sasl_auth(conn: poplib.POP3, mechanism: str, respond: Callable[[bytes], bytes]) -> bytes:
    """`AUTH mechanism`, answering each `+ challenge` with `respond`; the final +OK line.

    A `-ERR` at any step raises poplib.error_proto, as every poplib command does."""
    wire = cast(_Wire, conn)
    answer = wire._shortcmd(f"AUTH {mechanism}")
    for _ in range(_SASL_STEPS):
        if answer.startswith(b"+OK"):
            return answer
        try:
            challenge = base64.b64decode(answer[1:].strip(), validate=True)
        except binascii.Error as exc:
            raise poplib.error_proto(
                b"-ERR the server sent a challenge that is not base64"
            ) from exc
        wire._putcmd(base64.b64encode(respond(challenge)).decode("ascii"))
        answer = wire._getresp()
    raise poplib.error_proto(b"-ERR the server kept asking for more SASL steps")


class MessageRefused(ProtocolError):
    """RETR answered `-ERR` with no response code (RFC 2449 §8): the server refuses that
    one message, the session goes on. A code such as [SYS/TEMP] or [IN-USE] is about the
    whole maildrop and stays a plain ProtocolError (retried after the backoff)."""


STATUS_LINE = 2048  # poplib's own limit for a line outside a message (RFC 1939 says 512)
MAX_UIDL = 255  # RFC 1939 §7: 1 to 70 characters; stored as the copy's server id


class _BoundedPop3(poplib.POP3):
    """poplib's POP3 with its reads capped per connection (see the module docstring)."""

    limits: AnswerLimits = DEFAULT_LIMITS
    _line_limit = STATUS_LINE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._clock = DeadlineReader(self.limits)
        self._clock.start()  # the greeting's budget
        super().__init__(*args, **kwargs)

    def _putcmd(self, line: bytes) -> None:
        self._clock.start()  # each command's answer has its own time budget (deadline.py)
        super()._putcmd(line)  # type: ignore[misc]

    def _getline(self) -> tuple[bytes, int]:
        limit = self._line_limit
        sock = getattr(self, "sock", None)
        file = cast(io.BufferedReader, self.file)
        line = self._clock.readline(file, sock if isinstance(sock, socket.socket) else None, limit)
        if len(line) > limit:
            raise AnswerTooLarge(f"a line longer than {limit:,} bytes")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets

    def _getlongresp(self) -> tuple[bytes, list[bytes], int]:
        resp: bytes = self._getresp()  # type: ignore[attr-defined]
        lines: list[bytes] = []
        octets = 0
        line, size = self._getline()
        while line != b".":
            if line.startswith(b".."):  # dot-stuffing undone (RFC 1939 §3)
                size -= 1
                line = line[1:]
            octets += size
            if octets > self.limits.message:
                raise AnswerTooLarge(f"more than {self.limits.message:,} bytes")
            if len(lines) >= self.limits.untagged:
                raise AnswerTooLarge(f"more than {self.limits.untagged:,} lines")
            lines.append(line)
            line, size = self._getline()
        return resp, lines, octets

    def retr(self, which: int | str) -> tuple[bytes, list[bytes], int]:
        """RETR with lines as long as the message size limit."""
        self._line_limit = self.limits.message
        try:
            return super().retr(which)
        finally:
            self._line_limit = STATUS_LINE


class _BoundedPop3SSL(_BoundedPop3, poplib.POP3_SSL):
    """POP3 over implicit TLS (995), bounded."""


class Pop3Mailbox(Connection):
    """A logged-in POP3 session implementing sync.source.Pop3Source."""

    protocol = "POP3"
    failures = (poplib.error_proto, OSError, EOFError, AnswerTooLarge)

    def __init__(self, conn: poplib.POP3 | None, *, host: str, port: int, username: str) -> None:
        super().__init__(host=host, port=port)
        self._conn = conn
        self.username = username

    @classmethod
    def connect(
        cls, settings: ServerSettings, *, ssl_context: ssl.SSLContext | None = None
    ) -> Pop3Mailbox:
        """Connect, secure as `settings.security` says (STLS is required when asked), log in."""
        host, port = settings.host, settings.port
        ctx = tls_context_for(settings, ssl_context)
        box = cls(None, host=host, port=port, username=settings.username)
        box.bearer = settings.uses_token
        with box._logging_in(*sasl.login_secrets(settings), on_failure=box.abort):
            if settings.security is Security.SSL:
                box._conn = box._call(
                    "connect", _BoundedPop3SSL, host, port, context=ctx, timeout=settings.timeout
                )
            else:
                box._conn = box._call("connect", _BoundedPop3, host, port, timeout=settings.timeout)
            conn = box._conn
            if settings.security is Security.STARTTLS:
                caps = box._call("CAPA", conn.capa)
                if "STLS" not in caps:
                    raise TLSError(
                        f"The POP3 server {host}:{port} does not offer STLS; refusing to send "
                        "the password in plain text",
                        hint="Use security ssl (usually port 995) instead.",
                    )
                box._call("STLS", conn.stls, ctx)
            box._log_in(conn, settings)
        log.info("POP3 %s:%s: logged in as %s", host, port, settings.username)
        return box

    def _log_in(self, conn: poplib.POP3, settings: ServerSettings) -> None:
        """USER/PASS with the password, or AUTH XOAUTH2/OAUTHBEARER with the token."""
        if settings.access_token is None:
            self._call("USER", conn.user, settings.username)
            self._call("PASS", conn.pass_, settings.password)
            return
        offered = self._sasl_offered(conn) if settings.oauth_mechanism is None else []
        mechanism = sasl.choose_mechanism(offered, settings.oauth_mechanism)
        exchange = sasl.BearerExchange(mechanism, settings.username, settings.access_token)
        self._call("AUTH", _sasl_auth, conn, mechanism, exchange)

    def _sasl_offered(self, conn: poplib.POP3) -> list[str]:
        """The mechanisms CAPA's SASL line lists (RFC 2449 §6.3); none when CAPA fails."""
        try:
            caps = self._call("CAPA", conn.capa)
        except ProtocolError:
            return []
        return list(caps.get("SASL", []))

    def listing(self) -> list[tuple[int, str, int]]:
        """(number, UIDL, size) of every message, by number (UIDL and LIST, RFC 1939 §5, §7)."""
        conn = self._require()
        _, uidl_lines, _ = self._call("UIDL", conn.uidl)
        _, list_lines, _ = self._call("LIST", conn.list)
        server = f"The POP3 server {self.host}"
        sizes: dict[int, int] = {}
        for line in list_lines:
            num, _, size = line.partition(b" ")
            which = number(num, "a message number in LIST", low=1, server=server)
            words = size.split()
            sizes[which] = number(words[0], "a message size", server=server) if words else 0
        result = []
        for line in uidl_lines:
            num, _, uidl = line.partition(b" ")
            which = number(num, "a message number in UIDL", low=1, server=server)
            name = uidl.strip().decode("ascii", "replace")
            if not 0 < len(name) <= MAX_UIDL:
                raise ProtocolError(
                    f"{server} sent a UIDL of {len(name)} characters for message {which} "
                    f"(RFC 1939 §7: 1 to 70)"
                )
            result.append((which, name, sizes.get(which, 0)))
        return sorted(result)

    def retrieve(self, number: int) -> bytes:
        """RETR: the message with CRLF line ends, dot-stuffing undone (RFC 1939 §3)."""
        _, lines, _ = self._call("RETR", self._require().retr, number)
        return b"\r\n".join(lines) + b"\r\n"

    def delete(self, number: int) -> None:
        """DELE: mark for deletion at QUIT."""
        self._call("DELE", self._require().dele, number)

    def close(self) -> None:
        """QUIT (the server applies DELE marks now) and drop the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            self._call("QUIT", conn.quit)
        except MailroomError:
            with suppress(OSError):
                conn.close()
            raise

    def abort(self) -> None:
        """Drop the connection without QUIT: nothing marked is deleted."""
        conn, self._conn = self._conn, None
        sock = getattr(conn, "sock", None)
        if isinstance(sock, socket.socket):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if conn is not None:
            with suppress(OSError):
                conn.close()

    def _require(self) -> poplib.POP3:
        if self._conn is None:
            raise self._closed()
        return self._conn

    def _refused(self, action: str, exc: poplib.error_proto, server: str) -> MailServerError:
        """What a `-ERR` (or poplib's own protocol complaint) to `action` means."""
        arg = exc.args[0] if exc.args else b""
        said = self._scrub(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
        if said.startswith("-ERR EOF"):  # poplib's word for a closed connection
            return NetworkError(
                f"{server} dropped the connection during {action}", hint=NETWORK_HINT
            )
        if action == "AUTH" and "unsupported" in said.lower():
            return CapabilityError(f"{server} does not take this sign-in method: {said}")
        if action in ("PASS", "AUTH") or "[AUTH]" in said:
            if "[IN-USE]" in said or "[SYS/" in said:
                return ProtocolError(f"{server} could not open the maildrop: {said}")
            return credentials_refused(
                f"The POP3 server {self.host}",
                self.username,
                said,
                bearer=self.bearer,
                hint=AUTH_HINT,
            )
        if action == "RETR" and not said[4:].lstrip().startswith("["):
            return MessageRefused(f"the server refused RETR: {said}")
        return ProtocolError(f"The POP3 server {self.host} rejected {action}: {said}")

    def _translate(self, action: str, exc: BaseException) -> MailServerError:
        where = f"{self.host}:{self.port}"
        server = f"The POP3 server {where}"
        if isinstance(exc, AnswerTooLarge):
            self.abort()  # the rest of the answer is never read: the session is unusable
        if isinstance(exc, AnswerTooLarge):
            return refused_answer(exc, server, action)
        if isinstance(exc, poplib.error_proto):
            return self._refused(action, exc, server)
        failure = self._transport_error(action, exc)
        if failure is not None:
            return failure
        return NetworkError(f"{server} dropped the connection during {action}", hint=NETWORK_HINT)
