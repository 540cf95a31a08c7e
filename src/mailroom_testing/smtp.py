"""A real SMTP server (aiosmtpd) on 127.0.0.1 recording what it receives, for tests and bench.

`SmtpTestServer(root)` starts three listeners sharing one `RecordingHandler`: STARTTLS
(required before MAIL, AUTH after TLS, SIZE 2 MB), implicit TLS (SMTPS) with AUTH, and a
plain one that offers no STARTTLS and no AUTH. Its certificate is made like the test
Dovecot's (CN/SAN 127.0.0.1, `mailroom_testing.dovecot.make_cert`), in `root`.

Every AUTH attempt, accepted or not, is recorded as (login, password) in
`auth_attempts`, so a test can prove a secret never reached this server.

Recipients whose local part starts with `reject` get 550, with `defer` 451. Hooks
(`handler.on_mail`, `handler.on_data`) let a test act at MAIL or DATA time (kill the
client, file a Sent copy like Gmail does). The pytest fixtures around it live in
tests/conftest_smtp.py.

OAuth (opt-in, `SmtpTestServer(root, introspection_url=URL)`): the handler is then an
`OAuthRecordingHandler`, whose `auth_XOAUTH2` and `auth_OAUTHBEARER` hooks take the bearer
token from the client's SASL response and check it at the local OAuth provider's RFC 7662
endpoint (mailroom_testing/oauth_provider.py), as Google's and Microsoft's servers check
theirs; a refused token gets the JSON error challenge those servers send, then 535.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailroom_testing.dovecot import free_ports, make_cert
from mailroom_testing.oauth_provider import introspect_at

HOST = "127.0.0.1"
SIZE_LIMIT = 2 * 1024 * 1024


@dataclass
class Received:
    """One message as the server got it (the data after dot-unstuffing, CRLF lines)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    port: int


@dataclass
class RecordingHandler:
    """Records every accepted message; optional hooks run at MAIL and DATA."""

    messages: list[Received] = field(default_factory=list)
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)
    on_mail: Callable[[], None] | None = None
    on_data: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Run the `on_mail` hook, then accept the sender."""
        if self.on_mail is not None:
            self.on_mail()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse `reject*` (550) and defer `defer*` (451) recipients; accept the rest."""
        if address.lower().startswith("reject"):
            return "550 5.1.1 No such user here"
        if address.lower().startswith("defer"):
            return "451 4.2.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message (and run the `on_data` hook), then accept it."""
        port = server.transport.get_extra_info("sockname")[1] if server.transport else 0
        got = Received(
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
            envelope.original_content or b"",
            port,
        )
        if self.on_data is not None:
            self.on_data(got)
        with self.lock:
            self.messages.append(got)
        return "250 2.0.0 Accepted"


def bearer_of(response: bytes) -> tuple[str, str] | None:
    """(user, token) from an XOAUTH2 or OAUTHBEARER client response; None if malformed."""
    parts = response.decode("utf-8", "replace").split("\x01")
    user = token = None
    for part in parts:
        if part.startswith("user="):
            user = part[5:]
        elif part.startswith("n,"):  # GS2 header: n,a=USER,  (RFC 5801 §4)
            authzid = part[2:].rstrip(",")
            if authzid.startswith("a="):
                user = authzid[2:].replace("=2C", ",").replace("=3D", "=")
        elif part.startswith("auth=Bearer "):
            token = part[len("auth=Bearer ") :]
    return (user, token) if user and token else None


@dataclass
class OAuthRecordingHandler(RecordingHandler):
    """A RecordingHandler that also takes XOAUTH2 and OAUTHBEARER, checking each token at
    `introspection_url`; `logins` lists the users who signed in with a token."""

    introspection_url: str = ""
    logins: list[str] = field(default_factory=list)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 [initial-response] (Google's and Microsoft's SMTP)."""
        return await self._bearer(server, args)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH OAUTHBEARER [initial-response] (RFC 7628)."""
        return await self._bearer(server, args)

    async def _bearer(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            try:
                response = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False)
        else:
            got = await server.challenge_auth("")
            if not isinstance(got, bytes):
                return AuthResult(success=False, handled=True)  # aborted: 501 already sent
            response = got
        found = bearer_of(response)
        if found is not None:
            user, token = found
            answer = await asyncio.to_thread(introspect_at, self.introspection_url, token)
            if answer.get("active") is True and answer.get("username") == user:
                with self.lock:
                    self.logins.append(user)
                return AuthResult(success=True, auth_data=user)
        error = {"status": "401", "schemes": "bearer", "scope": "mail"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(success=False, handled=False)


class SmtpTestServer:
    """Three aiosmtpd listeners (STARTTLS, SMTPS, plain) around one RecordingHandler."""

    def __init__(self, root: Path, *, introspection_url: str | None = None) -> None:
        self.root = root
        self.handler: RecordingHandler = (
            OAuthRecordingHandler(introspection_url=introspection_url)
            if introspection_url
            else RecordingHandler()
        )
        self.username = "sender@acme.example"
        self.password = "smtp-secret-" + root.name[-6:]
        self.cert_path = root / "cert.pem"
        self._controllers: list[Controller] = []
        self.starttls_port = self.smtps_port = self.plain_port = 0

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            with self.handler.lock:
                attempt = (data.login.decode(errors="replace"), data.password.decode("latin-1"))
                self.handler.auth_attempts.append(attempt)
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        """Make the certificate and start the three listeners on free ports."""
        key = self.root / "key.pem"
        make_cert(self.cert_path, key)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(self.cert_path), str(key))
        ports = free_ports(3)
        self.starttls_port, self.smtps_port, self.plain_port = ports
        common: dict[str, Any] = {"hostname": HOST, "server_hostname": "smtp.test"}
        self._controllers = [
            Controller(
                self.handler,
                port=self.starttls_port,
                tls_context=server_ctx,
                require_starttls=True,
                auth_required=True,
                authenticator=self._auth,
                data_size_limit=SIZE_LIMIT,
                **common,
            ),
            Controller(
                self.handler,
                port=self.smtps_port,
                ssl_context=server_ctx,
                auth_required=True,
                auth_require_tls=False,  # the whole connection is TLS already
                authenticator=self._auth,
                data_size_limit=SIZE_LIMIT,
                **common,
            ),
            Controller(self.handler, port=self.plain_port, **common),
        ]
        for controller in self._controllers:
            controller.start()

    def stop(self) -> None:
        """Stop every listener."""
        for controller in self._controllers:
            controller.stop()
        self._controllers = []

    def reset(self) -> None:
        """Forget the recorded messages and clear the hooks."""
        with self.handler.lock:
            self.handler.messages.clear()
            if isinstance(self.handler, OAuthRecordingHandler):
                self.handler.logins.clear()
            self.handler.auth_attempts.clear()
        self.handler.on_mail = None
        self.handler.on_data = None

    @property
    def messages(self) -> list[Received]:
        """A copy of what the server has accepted so far."""
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def auth_attempts(self) -> list[tuple[str, str]]:
        """A copy of every (login, password) an AUTH command has sent so far."""
        with self.handler.lock:
            return list(self.handler.auth_attempts)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cert_path))
