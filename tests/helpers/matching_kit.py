"""Helpers for the matching, filter, rule and `why` tests: a company, mail, ingestion.

Messages are built with the stdlib (never pasted), with every header matching looks at
(Bcc, Reply-To, Sender, list and auto-reply headers), and ingested through the real
`ingest_batch`, the one path synced mail takes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.connectors.base import RawMessage
from mailroom.crm.companies import add_company, add_user, get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Attachment, Mailbox, Message, MessageLink, Record
from mailroom.ingest.batch import BatchResult, IngestTarget, ingest_batch
from mailroom.mailboxes.store import add_mailbox
from mailroom.matching.directory import load_directory

_ids = itertools.count(1)
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    """Acme (acme.example) with two users, each with one mailbox (Ann's with an approved alias)."""

    company_id: int
    ann_box: int
    bob_box: int


def setup(app: App) -> Setup:
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        ann = add_user(session, company=company, email="ann@acme.example")
        bob = add_user(session, company=company, email="bob@acme.example")
        ann_box = add_mailbox(
            session,
            app.secrets,
            user=ann,
            host="imap.test",
            port=993,
            password="pw-123456",
            aliases=["ann.sales@acme-mail.example"],
            approve_aliases=True,  # an admin approved it: it is Ann's own address
        )
        bob_box = add_mailbox(
            session, app.secrets, user=bob, host="imap.test", port=993, password="pw-123456"
        )
        return Setup(company.id, ann_box.id, bob_box.id)


def mail(
    *,
    sender: str = "Jo Client <jo@client.example>",
    to: str = "ann@acme.example",
    subject: str = "Quote request",
    body: str = "Hello, could you send a quote?",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    minutes: int = 0,
    headers: Sequence[tuple[str, str]] = (),
    attachment: bytes | None = None,
) -> bytes:
    """RFC 5322 bytes; `headers` adds any other header (Cc, Bcc, Reply-To, List-Id…)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(BASE + timedelta(minutes=minutes))
    msg["Message-ID"] = f"<{message_id or f'm{next(_ids)}@test.example'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for name, value in headers:
        msg[name] = value
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="quote.pdf")
    return msg.as_bytes()


def ingest(app: App, mailbox_id: int, *messages: bytes, folder: str = "INBOX") -> BatchResult:
    """Ingest `messages` as one batch from `mailbox_id`, in one transaction."""
    with transaction(app.sessions) as session:
        box = session.get(Mailbox, mailbox_id)
        assert box is not None
        target = IngestTarget(
            company_id=box.company_id,
            mailbox_id=mailbox_id,
            directory=load_directory(session, box.company_id),
            blobs=app.blobs,
        )
        raws = [
            RawMessage(folder=folder, uidvalidity=1, uid=next(_ids), data=data) for data in messages
        ]
        return ingest_batch(session, target, raws)


def links_of(app: App, message_id: str) -> dict[str, str]:
    """`TYPE:ID` → reason for the stored message with this Message-ID."""
    with app.sessions() as session:
        rows = session.execute(
            select(Record.type, Record.id, MessageLink.reason)
            .join(MessageLink, MessageLink.record_id == Record.id)
            .join(Message, Message.id == MessageLink.message_id)
            .where(Message.message_id == message_id)
        )
        return {f"{t}:{i}": reason for t, i, reason in rows}


def skip_of(app: App, message_id: str) -> str | None:
    with app.sessions() as session:
        return session.scalar(
            select(MessageSkip.skipped_by)
            .join(Message, Message.id == MessageSkip.message_id)
            .where(Message.message_id == message_id)
        )


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def fast_ingest(app: App, mailbox_id: int, *messages: bytes) -> BatchResult:
    """Ingest `messages` as the sync does (headers now, bodies on first read), UIDs from 1."""
    with transaction(app.sessions) as session:
        box = session.get(Mailbox, mailbox_id)
        assert box is not None
        target = IngestTarget(
            company_id=box.company_id,
            mailbox_id=mailbox_id,
            directory=load_directory(session, box.company_id),
            blobs=app.blobs,
            defer_bodies=True,
        )
        raws = [
            RawMessage(folder="INBOX", uidvalidity=1, uid=n, data=data)
            for n, data in enumerate(messages, start=1)
        ]
        return ingest_batch(session, target, raws)


def stored(app: App, message_id: str) -> tuple[bool, str, int]:
    """(bodies_parsed, text_body, attachment rows) of a stored message."""
    with app.sessions() as session:
        row = session.scalars(select(Message).where(Message.message_id == message_id)).one()
        files = session.scalar(
            select(func.count()).select_from(Attachment).where(Attachment.message_id == row.id)
        )
        return row.bodies_parsed, row.text_body, files or 0


def record(app: App, kind: str, name: str, *emails: str, **kw: object) -> int:
    """Add a record of Acme holding `emails` (the first is its main address); its id."""
    with transaction(app.sessions) as session:
        company = get_company(session, "Acme")
        fields = [
            EmailField("main" if i == 0 else f"email_{i + 1}", e) for i, e in enumerate(emails)
        ]
        row = add_record(
            session,
            company=company,
            record_type=kind,
            name=name,
            emails=fields,
            **kw,  # type: ignore[arg-type]
        )
        return row.id
