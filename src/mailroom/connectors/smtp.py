"""SMTP submission through the user's own server: one verb, `send`, and its errors by blame.

Why smtplib with the transaction split by hand: the outbox must know the exact point of
no return. Everything before the end of DATA can be abandoned safely — a connection that
drops mid-transaction aborts it (RFC 5321 §4.1.1.4) — so `send` runs MAIL and RCPT, calls
`before_data` (where the outbox commits "this attempt reached DATA"), and only then sends
the content. If the process dies after that commit, the outbox knows the outcome is
unknown and checks the Sent folder before it ever sends again.

Transparency (RFC 5321 §4.5.2) and line endings (§2.3.8): every bare CR or LF in the data
becomes CRLF here, then smtplib doubles every dot that starts a line and ends the data
with CRLF.CRLF. So no byte sequence in a body — `\\r\\n.\\r\\n`, a lone dot after a bare
LF or CR (the "SMTP smuggling" shapes) — can end the data early and start a second
message: the server sees exactly one.

TLS: implicit TLS (SMTPS, RFC 8314) or STARTTLS (RFC 3207). STARTTLS is required when
configured: a server that does not offer it is a TLSError, never a reason to send the
password in plain text. Certificates are verified against the system trust store unless
the mailbox allows a self-signed certificate.

Errors: 4xx replies are transient, 5xx permanent (RFC 5321 §4.2.1); `SendRefused` says
which and why (recipient, sender, size, content). No message contains the password.

OAuth: with an access token, AUTH is XOAUTH2 (or OAUTHBEARER) through smtplib's `auth`,
the response sent with the command (RFC 4954 §4 initial response, as Google and Microsoft
document it); a refused token is a TokenRejected. Microsoft 365 takes it on
smtp.office365.com:587 (STARTTLS), Gmail on smtp.gmail.com:465.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from mailroom.connectors import sasl
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.deadline import refused_answer
from mailroom.connectors.limits import AnswerTooLarge
from mailroom.connectors.smtp_bounded import BoundedSmtp, BoundedSmtpSsl
from mailroom.connectors.transport import (
    NETWORK_HINT,
    Connection,
    credentials_refused,
    tls_context_for,
)
from mailroom.digits import is_number
from mailroom.errors import (
    CapabilityError,
    MailServerError,
    NetworkError,
    ProtocolError,
    TLSError,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

AUTH_HINT = "Check the SMTP user name and password; with two-factor sign-in, use an app password."
_EOL = re.compile(rb"\r\n|\r|\n")


class SendRefused(ProtocolError):
    """The server refused the message; `permanent` (5xx) or not (4xx), and why."""

    kind = "refused"

    def __init__(self, message: str, *, code: int, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.reason = reason  # recipient | sender | size | content | other
        self.permanent = code >= 500
        self.user_fixable = self.permanent


@dataclass(frozen=True, slots=True)
class Accepted:
    """The server's answer to the end of DATA: it has taken responsibility for delivery."""

    code: int
    reply: str


def canonical_lines(data: bytes) -> bytes:
    """`data` with every CR, LF or CRLF made CRLF (RFC 5321 §2.3.8: no bare CR or LF)."""
    return _EOL.sub(b"\r\n", data)


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


class SmtpSender(Connection):
    """A logged-in SMTP connection that sends whole messages, one transaction at a time."""

    protocol = "SMTP"
    failures = (smtplib.SMTPException, OSError, ValueError, AnswerTooLarge)

    def __init__(self, conn: smtplib.SMTP | None, *, host: str, port: int) -> None:
        super().__init__(host=host, port=port)
        self._conn: smtplib.SMTP | None = conn

    @classmethod
    def connect(
        cls,
        settings: ServerSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> SmtpSender:
        """Connect, secure the connection as configured, EHLO, and log in if a user is set."""
        host, port = settings.host, settings.port
        ctx = tls_context_for(settings, ssl_context)
        sender = cls(None, host=host, port=port)
        sender.bearer = settings.uses_token
        with sender._logging_in(*sasl.login_secrets(settings), on_failure=sender.close):
            if settings.security is Security.SSL:
                conn: smtplib.SMTP = sender._call(
                    "connect",
                    BoundedSmtpSsl,
                    host,
                    port,
                    local_hostname=local_hostname,
                    timeout=settings.timeout,
                    context=ctx,
                )
            else:
                conn = sender._call(
                    "connect",
                    BoundedSmtp,
                    host,
                    port,
                    local_hostname=local_hostname,
                    timeout=settings.timeout,
                )
            sender._conn = conn
            sender._call("EHLO", conn.ehlo)
            if settings.security is Security.STARTTLS:
                if not conn.has_extn("starttls"):
                    raise TLSError(
                        f"The SMTP server {host}:{port} does not offer STARTTLS; refusing to "
                        "go on in plain text",
                        hint="Use implicit TLS (security ssl, usually port 465) instead.",
                    )
                sender._call("STARTTLS", conn.starttls, context=ctx)
                sender._call("EHLO", conn.ehlo)
            if settings.username:
                if not conn.has_extn("auth"):
                    raise CapabilityError(
                        f"The SMTP server {host}:{port} offers no AUTH on this connection",
                        hint="Use the submission port (587 or 465) with TLS.",
                    )
                sender._log_in(conn, settings)
        log.info("SMTP %s:%s: ready (%s)", host, port, settings.security)
        return sender

    def _log_in(self, conn: smtplib.SMTP, settings: ServerSettings) -> None:
        """AUTH with the password (smtplib picks the mechanism), or XOAUTH2/OAUTHBEARER."""
        if settings.access_token is None:
            self._call("AUTH", conn.login, settings.username, settings.password)
            return
        offered = conn.esmtp_features.get("auth", "").split()
        mechanism = sasl.choose_mechanism(offered, settings.oauth_mechanism)
        exchange = sasl.BearerExchange(mechanism, settings.username, settings.access_token)

        def respond(challenge: bytes | None = None) -> str:  # smtplib wants str (ASCII)
            return exchange(challenge).decode("ascii")

        self._call("AUTH", conn.auth, mechanism, respond, initial_response_ok=True)

    @property
    def max_size(self) -> int | None:
        """The SIZE the server announced (RFC 1870 §4), None when it announced none or 0."""
        conn = self._require()
        value = conn.esmtp_features.get("size", "").strip()
        return int(value) if is_number(value) and int(value) > 0 else None

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        before_data: Callable[[], None] | None = None,
    ) -> Accepted:
        """One transaction: MAIL, every RCPT, `before_data()`, DATA. All or nothing:
        a refused recipient aborts the transaction (RSET) before any content is sent."""
        conn = self._require()
        if not recipients:
            raise ValueError("a message needs at least one recipient")
        data = canonical_lines(data)
        limit = self.max_size
        if limit is not None and len(data) > limit:
            raise SendRefused(
                f"The message is {len(data):,} bytes; the SMTP server {self.host} takes at "
                f"most {limit:,} (its SIZE limit)",
                code=552,
                reason="size",
                hint="Send smaller or fewer attachments.",
            )
        options = [f"SIZE={len(data)}"] if conn.has_extn("size") else []
        code, reply = self._call("MAIL", conn.mail, sender, options)
        if code != 250:
            self._abort()
            raise self._refused("MAIL FROM", code, reply, "sender")
        for rcpt in recipients:
            code, reply = self._call("RCPT", conn.rcpt, rcpt)
            if code not in (250, 251):
                self._abort()
                raise self._refused(f"the recipient {rcpt}", code, reply, "recipient")
        if before_data is not None:
            before_data()
        answer: bytes | str
        try:
            code, answer = conn.data(data)
        except smtplib.SMTPDataError as exc:
            code, answer = exc.smtp_code, exc.smtp_error
        except (smtplib.SMTPException, OSError, AnswerTooLarge) as exc:
            raise self._translate("DATA", exc) from exc
        if code != 250:
            reason = "size" if code == 552 else "content"
            raise self._refused("the message", code, answer, reason)
        return Accepted(code=code, reply=_reply(answer))

    def close(self) -> None:
        """QUIT and drop the connection; safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    # -- internals -------------------------------------------------------------------------

    def _require(self) -> smtplib.SMTP:
        if self._conn is None:
            raise self._closed()
        return self._conn

    def _abort(self) -> None:
        try:
            self._require().rset()
        except (smtplib.SMTPException, OSError):
            log.debug("SMTP %s: RSET after a refusal failed", self.host)

    def _refused(self, what: str, code: int, reply: bytes | str, reason: str) -> SendRefused:
        said = self._scrub(_reply(reply))
        hints = {
            "recipient": "Check the address; the recipient's server does not take it.",
            "sender": "The server does not let this mailbox send as its address.",
            "size": "Send smaller or fewer attachments.",
        }
        return SendRefused(
            f"The SMTP server {self.host} refused {what}: {code} {said}",
            code=code,
            reason=reason,
            hint=hints.get(reason) if code >= 500 else "Mailroom will try again later.",
        )

    def _translate(self, action: str, exc: BaseException) -> MailServerError:
        server = f"The SMTP server {self.host}:{self.port}"
        if isinstance(exc, AnswerTooLarge):
            return refused_answer(exc, server, action)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            said = self._scrub(_reply(exc.smtp_error))
            if exc.smtp_code < 500 and exc.smtp_code != 454:
                return ProtocolError(f"{server} could not log in now: {exc.smtp_code} {said}")
            return credentials_refused(
                server, "", f"{exc.smtp_code} {said}", bearer=self.bearer, hint=AUTH_HINT
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return CapabilityError(f"{server} does not support {action}")
        if isinstance(exc, smtplib.SMTPResponseException):
            said = self._scrub(_reply(exc.smtp_error))
            return SendRefused(
                f"{server} refused {action}: {exc.smtp_code} {said}",
                code=exc.smtp_code,
                reason="other",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return NetworkError(
                f"{server} closed the connection during {action}", hint=NETWORK_HINT
            )
        failure = self._transport_error(action, exc)
        if failure is not None:
            return failure
        return NetworkError(
            f"{server} failed during {action}: {self._scrub(str(exc))}", hint=NETWORK_HINT
        )
