"""Pytest plugin: the real SMTP server of `mailroom_testing.smtp`, and a sending company.

Register it from tests/conftest.py's `pytest_plugins`.

- `smtp_server` (session): a started `SmtpTestServer` (STARTTLS, SMTPS and plain
  listeners around one recording handler; see mailroom_testing/smtp.py).
- `smtp` (function): the same server, emptied and with its hooks cleared.
- `make_outbox_env(...)`: a company whose user's mailbox is a real Dovecot user and sends
  through `smtp`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailroom_testing.smtp import HOST, SIZE_LIMIT, Received, SmtpTestServer

__all__ = ["HOST", "SIZE_LIMIT", "OutboxEnv", "Received", "SmtpTestServer", "make_outbox_env"]


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
