"""What every mail protocol client shares: TLS contexts, the connection's call wrapper, and
socket/TLS failures turned into mailroom errors (split by blame, errors.py).

Each client (imap, pop3, smtp) subclasses `Connection` and writes only its protocol's
half of `_translate` (a refused LOGIN/PASS/AUTH, a NO or a 5xx), then hands everything
else to `transport_error`, so a certificate, handshake, timeout or refused connection reads
the same for every protocol, with that protocol's ports in the hint (implicit TLS /
STARTTLS: IMAP 993/143, RFC 8314 §3.3; POP3 995/110; SMTP submission 465/587, RFC 8314
§3.3 and RFC 6409). The password or OAuth access token given while logging in (and the
base64 SASL responses carrying the token, connectors.sasl) is scrubbed from every message;
a refused token is a TokenRejected, never a plain AuthenticationError, so the caller can
refresh it once and retry.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import ClassVar, ParamSpec, Self, TypeVar

from mailroom.connectors.base import Security, ServerSettings
from mailroom.errors import (
    AuthenticationError,
    MailroomError,
    MailServerError,
    NetworkError,
    ProtocolError,
    TLSError,
    TokenRejected,
)

P = ParamSpec("P")
R = TypeVar("R")

AUTH_HINT = "Check the password; with two-factor sign-in, use an app password."
TOKEN_HINT = (
    "The OAuth access token was refused: refresh it and try once more; if the refresh is "
    "refused too, sign in again."
)
NETWORK_HINT = "Check the host name, the port and the network; the server may be down."
TLS_PORTS = {"IMAP": (993, 143), "POP3": (995, 110), "SMTP": (465, 587)}


def tls_hint(protocol: str) -> str:
    """What to check after a TLS failure, with the usual ports of `protocol`."""
    implicit, starttls = TLS_PORTS[protocol]
    return (
        "Check the host name and the security setting (implicit TLS is usually port "
        f"{implicit}, STARTTLS port {starttls}). For a server with a self-signed "
        "certificate, use --allow-self-signed."
    )


def make_ssl_context(settings: ServerSettings) -> ssl.SSLContext:
    """The system trust store; no verification at all when allow_self_signed is set.

    Built once per kind and shared (an SSLContext is safe to share between connections):
    loading the trust store costs ~60 ms, more than a whole no-change resync.
    """
    return _ssl_context(settings.allow_self_signed)


@functools.cache
def _ssl_context(allow_self_signed: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if allow_self_signed:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_context_for(
    settings: ServerSettings, given: ssl.SSLContext | None = None
) -> ssl.SSLContext | None:
    """The context a connection uses: `given`, else the shared one; None in plain text."""
    if settings.security is Security.NONE:
        return None
    return given or make_ssl_context(settings)


def credentials_refused(
    server: str, whom: str, said: str, *, bearer: bool, hint: str
) -> AuthenticationError | TokenRejected:
    """The error for a refused login: TokenRejected for a bearer token, else an
    AuthenticationError with `hint`. `server` starts the message ("The IMAP server h")."""
    for_whom = f" for {whom}" if whom else ""
    if bearer:
        return TokenRejected(
            f"{server} refused the access token{for_whom} ({said})", hint=TOKEN_HINT
        )
    return AuthenticationError(
        f"{server} refused the user name or password{for_whom} ({said})", hint=hint
    )


def transport_error(
    exc: BaseException,
    *,
    protocol: str,
    host: str,
    port: int,
    action: str,
    scrub: Callable[[str], str],
) -> MailServerError | None:
    """The TLSError or NetworkError for a TLS or socket failure during `action`; None when
    `exc` is neither (the protocol's own error, for the caller to translate)."""
    where = f"{host}:{port}"
    server = f"The {protocol} server {where}"
    hint = tls_hint(protocol)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or getattr(exc, "reason", None) or "certificate verify failed"
        return TLSError(f"{server} sent a certificate that was rejected: {why}", hint=hint)
    if isinstance(exc, ssl.SSLError):
        why = scrub(getattr(exc, "reason", None) or str(exc))
        return TLSError(f"The TLS handshake with {where} failed: {why}", hint=hint)
    if isinstance(exc, TimeoutError):
        message = f"{server} did not answer in time ({action})"
    elif isinstance(exc, ConnectionRefusedError):
        message = f"{server} refused the connection"
    elif isinstance(exc, socket.gaierror):
        message = f"The host name {host} could not be resolved"
    elif isinstance(exc, OSError):
        why = scrub(exc.strerror or str(exc))
        message = f"{server} could not be reached ({action}): {why}"
    else:
        return None
    return NetworkError(message, hint=NETWORK_HINT)


class Connection:
    """A client connection's host, port and login secret, and the one way it calls its
    library: `_call` turns whatever the library raises (`failures`) into a MailServerError
    through `_translate`, with the secret scrubbed, and logs it."""

    protocol: ClassVar[str]
    failures: ClassVar[tuple[type[BaseException], ...]]

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._secrets: tuple[str, ...] = ()  # only while logging in, to scrub messages
        self.bearer = False  # logging in with an OAuth access token (connectors.sasl)

    def _call(self, action: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one protocol step, turning whatever it raises into a MailServerError."""
        try:
            return fn(*args, **kwargs)
        except MailroomError:
            raise
        except self.failures as exc:
            error = self._translate(action, exc)
            self._locate(error, action)
            logging.getLogger(type(self).__module__).warning(
                "%s %s:%s %s failed: %s", self.protocol, self.host, self.port, action, error
            )
            raise error from exc
        except Exception as exc:  # the library choked on the answer: the server's fault
            error = self._unreadable(action, exc)
            self._locate(error, action)
            logging.getLogger(type(self).__module__).warning(
                "%s %s:%s %s failed: %s",
                self.protocol,
                self.host,
                self.port,
                action,
                error,
                exc_info=True,
            )
            raise error from exc

    def _locate(self, error: MailServerError, action: str) -> None:
        """Say on the error which step of which server failed (services.host_policy
        keeps a failed greeting's words out of web and API answers by it)."""
        error.step = action
        error.server = f"{self.protocol} server {self.host}:{self.port}"

    def _unreadable(self, action: str, exc: Exception) -> ProtocolError:
        """A ProtocolError for an answer the library could not parse (a ValueError in
        IMAPClient's `int(…)`, an IndexError in poplib …): never a traceback."""
        why = self._scrub(f"{type(exc).__name__}: {exc}")
        return ProtocolError(
            f"The {self.protocol} server {self.host}:{self.port} sent an answer to {action} "
            f"that Mailroom could not read ({why[:200]})",
            hint="The server's answer is malformed; Mailroom retries later. If it persists, "
            "the server's administrator should check its log.",
        )

    @contextlib.contextmanager
    def _logging_in(self, *secrets: str | None, on_failure: Callable[[], None]) -> Iterator[None]:
        """While connecting and logging in: scrub `secrets` from every error, and call
        `on_failure` (close or abort) if anything fails, so no half-open session is left."""
        self._secrets = tuple(s for s in secrets if s)
        try:
            yield
        except BaseException:
            on_failure()
            raise
        finally:
            self._secrets = ()

    def close(self) -> None:
        """End the session politely (LOGOUT, QUIT) and drop the connection."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _closed(self) -> NetworkError:
        return NetworkError(f"The connection to the {self.protocol} server {self.host} is closed")

    def _translate(self, action: str, exc: BaseException) -> MailServerError:
        """The protocol's own errors first, then `transport_error`."""
        raise NotImplementedError

    def _transport_error(self, action: str, exc: BaseException) -> MailServerError | None:
        return transport_error(
            exc,
            protocol=self.protocol,
            host=self.host,
            port=self.port,
            action=action,
            scrub=self._scrub,
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text
