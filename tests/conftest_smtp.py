"""Pytest plugin: a real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Register it from tests/conftest.py's `pytest_plugins`.

- `smtp_server` (session): a started `SmtpTestServer` with three listeners sharing one
  recording handler — STARTTLS (required before MAIL, AUTH after TLS, SIZE 2 MB),
  implicit TLS (SMTPS) with AUTH, and a plain one that offers no STARTTLS and no AUTH.
  Its certificate is made like the test Dovecot's (CN/SAN 127.0.0.1, `_make_cert`).
- `smtp` (function): the same server, emptied and with its hooks cleared.

Recipients whose local part starts with `reject` get 550, with `defer` 451. Hooks let a
test act at MAIL or DATA time (kill the client, file a Sent copy like Gmail does).
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.dovecot_server import _free_ports, _make_cert

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
    on_mail: Callable[[], None] | None = None
    on_data: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.on_mail is not None:
            self.on_mail()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().startswith("reject"):
            return "550 5.1.1 No such user here"
        if address.lower().startswith("defer"):
            return "451 4.2.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
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


class SmtpTestServer:
    """Three aiosmtpd listeners (STARTTLS, SMTPS, plain) around one RecordingHandler."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handler = RecordingHandler()
        self.username = "sender@acme.example"
        self.password = "smtp-secret-" + root.name[-6:]
        self.cert_path = root / "cert.pem"
        self._controllers: list[Controller] = []
        self.starttls_port = self.smtps_port = self.plain_port = 0

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        key = self.root / "key.pem"
        _make_cert(self.cert_path, key)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(self.cert_path), str(key))
        ports = _free_ports(3)
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
        for controller in self._controllers:
            controller.stop()
        self._controllers = []

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
        self.handler.on_mail = None
        self.handler.on_data = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpTestServer]:
    root = Path(tempfile.mkdtemp(prefix="mailroom-smtp-"))
    server = SmtpTestServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def forget_trust_store() -> None:
    """Drop the client TLS contexts connectors/transport.py caches, so a test's SSL_CERT_FILE
    (set by `make_outbox_env`) applies to it and to no later test."""
    from mailroom.connectors import transport

    cached = getattr(transport, "_ssl_context", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


@pytest.fixture
def smtp(smtp_server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    smtp_server.reset()
    forget_trust_store()
    yield smtp_server
    smtp_server.reset()
    forget_trust_store()


@dataclass
class OutboxEnv:
    """A company whose user's mailbox is a real Dovecot user and sends through `smtp`."""

    app: Any
    mailbox_id: int
    contact_id: int
    case_id: int
    imap_user: str
    dovecot: Any
    smtp: SmtpTestServer
    ca_bundle: Path


def make_outbox_env(
    app: Any,
    dovecot: Any,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    port: str = "starttls",
    security: str = "starttls",
    preset: str | None = None,
) -> OutboxEnv:
    """Acme (acme.example), Ann with a mailbox on the test Dovecot, contact Jo, a case;
    certificates of both test servers trusted through SSL_CERT_FILE (verification on)."""
    from mailroom.crm.companies import add_company, add_user
    from mailroom.crm.records import EmailField, add_record
    from mailroom.db.engine import transaction
    from mailroom.mailboxes.store import add_mailbox
    from mailroom.outbox.smtp_settings import set_smtp

    bundle = app.settings.data_dir / "test-ca.pem"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(smtp.cert_path.read_bytes() + dovecot.cert_path.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    forget_trust_store()
    smtp_port = {"starttls": smtp.starttls_port, "ssl": smtp.smtps_port, "plain": smtp.plain_port}
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        ann = add_user(session, company=company, email="ann@acme.example", name="Ann Seller")
        box = add_mailbox(
            session,
            app.secrets,
            user=ann,
            host=dovecot.host,
            port=dovecot.imaps_port,
            username=imap_user[0],
            password=imap_user[1],
        )
        contact = add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo Client",
            emails=[EmailField("main", "jo@client.example")],
        )
        case = add_record(session, company=company, record_type="case", name="Broken widget")
        set_smtp(
            session,
            app.secrets,
            mailbox=box,
            host=HOST,
            port=smtp_port[port],
            security=security,
            username=smtp.username,
            password=smtp.password,
            preset=preset,
        )
        ids = box.id, contact.id, case.id
    return OutboxEnv(app, *ids, imap_user[0], dovecot, smtp, bundle)
