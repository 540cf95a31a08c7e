"""IMAP failures → mailroom errors, split by blame (errors.py), with the password scrubbed.

A refused LOGIN (or AUTHENTICATE with a bearer token: TokenRejected) is an
AuthenticationError unless its response code (RFC 5530) says the
server, not the password, is the problem; certificate and handshake failures are
TLSError; a dropped, refused or silent connection is NetworkError; any other NO/BAD is a
ProtocolError carrying the server's words (the health module reads codes such as
[THROTTLED] or [OVERQUOTA] from them). Socket and TLS failures read as for every protocol
(connectors.transport).
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Callable

from imapclient.exceptions import LoginError

from mailroom.connectors.deadline import refused_answer
from mailroom.connectors.limits import AnswerTooLarge
from mailroom.connectors.transport import (
    AUTH_HINT,
    NETWORK_HINT,
    credentials_refused,
    tls_hint,
    transport_error,
)
from mailroom.errors import (
    MailServerError,
    NetworkError,
    ProtocolError,
    TLSError,
)

BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)
RESP_CODE = re.compile(r"^\[([A-Z-]+)")


def server_text(exc: BaseException) -> str:
    """The server's words from an imaplib/IMAPClient error, without the b'...' wrapper."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    match = BYTES_REPR.match(text)
    return match.group(2) if match else text


def translate_error(
    exc: BaseException,
    *,
    action: str,
    host: str,
    port: int,
    username: str,
    scrub: Callable[[str], str],
    bearer: bool = False,
) -> MailServerError:
    """The MailServerError for what imaplib/IMAPClient/the socket raised during `action`."""
    where = f"{host}:{port}"
    server = f"The IMAP server {where}"
    if isinstance(exc, LoginError) and isinstance(exc.__context__, imaplib.IMAP4.abort):
        exc = exc.__context__  # IMAPClient wraps a connection dropped during LOGIN too
    if isinstance(exc, LoginError):
        said = scrub(server_text(exc))
        code = match.group(1) if (match := RESP_CODE.match(said)) else None
        if code == "PRIVACYREQUIRED":
            return TLSError(f"{server} requires TLS before login: {said}", hint=tls_hint("IMAP"))
        if code in ("UNAVAILABLE", "SERVERBUG", "LIMIT", "INUSE"):
            return ProtocolError(f"{server} could not log in {username}: {said}")
        return credentials_refused(
            f"The IMAP server {host}", username, said, bearer=bearer, hint=AUTH_HINT
        )
    if isinstance(exc, AnswerTooLarge):
        return refused_answer(exc, server, action)
    if isinstance(exc, imaplib.IMAP4.abort | EOFError):
        why = scrub(server_text(exc)) or "connection closed"
        return NetworkError(
            f"{server} dropped the connection during {action}: {why}", hint=NETWORK_HINT
        )
    failure = transport_error(
        exc, protocol="IMAP", host=host, port=port, action=action, scrub=scrub
    )
    if failure is not None:
        return failure
    # NO or BAD
    return ProtocolError(f"The IMAP server {host} rejected {action}: {scrub(server_text(exc))}")
