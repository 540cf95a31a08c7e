"""The outbox's service functions: queue a message, list the outbox, release a held one.

Queueing validates everything that can be validated without a server — the mailbox and
its SMTP settings, the record, the message replied to, every address and header (compose),
the provider's limits — and stores the finished message bytes with the entry. The caller
commits, and only then is a send attempted (outbox.delivery), so a crash at any point
leaves either no entry or an entry whose exact bytes will be sent at most once.

Statuses: queued → sending → sent; sending → queued (transient error, with backoff);
sending → failed (permanent: authentication, recipient refused, too big); sending → held
(the outcome of an attempt is unknown and the Sent folder cannot tell: a person decides,
`mailroom outbox retry ID`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailroom.crm.records import get_record
from mailroom.db.models import Mailbox, Message, Record, User
from mailroom.db.outbox_models import MailboxSmtp, OutboxAttempt, OutboxEntry
from mailroom.db.times import as_utc
from mailroom.errors import BadInput, NotFound
from mailroom.mail.threads import normalise_message_id
from mailroom.mailboxes.store import get_mailbox
from mailroom.outbox.compose import Draft, FileAttachment, Parent, compose
from mailroom.outbox.limits import Usage, check_limits, usage
from mailroom.outbox.smtp_settings import get_smtp, preset_of


def iso(value: datetime | None) -> str | None:
    when = as_utc(value)
    return when.isoformat() if when else None


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a user asked to send, as the CLI, the web and the API hand it over."""

    mailbox_id: int
    to: Sequence[str]
    subject: str
    text: str
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    html: str | None = None
    attachments: Sequence[FileAttachment] = field(default_factory=tuple)
    reply_to_message: str | None = None
    record: str | None = None  # TYPE:ID


def find_parent(session: Session, *, company_id: int, message_id: str) -> Message:
    wanted = normalise_message_id(message_id)
    row = (
        session.scalar(
            select(Message).where(Message.company_id == company_id, Message.message_id == wanted)
        )
        if wanted
        else None
    )
    if row is None:
        raise NotFound(
            f"No logged message has the Message-ID {message_id!r}.",
            hint="Use a message_id from `mailroom timeline RECORD --json`.",
        )
    return row


def queue_message(
    session: Session, *, request: SendRequest, now: datetime | None = None
) -> OutboxEntry:
    """Validate, compose and queue one message (flushed, not committed); limits enforced."""
    now = now or datetime.now(UTC)
    mailbox = get_mailbox(session, request.mailbox_id)
    smtp = get_smtp(session, mailbox)
    if not mailbox.enabled:
        raise BadInput(f"Mailbox {mailbox.id} is disabled.")
    owner = session.get(User, mailbox.user_id)
    record: Record | None = None
    if request.record:
        record = get_record(session, company_id=mailbox.company_id, ref=request.record)
    parent: Parent | None = None
    if request.reply_to_message:
        row = find_parent(
            session, company_id=mailbox.company_id, message_id=request.reply_to_message
        )
        parent = Parent(
            message_id="" if row.message_id_generated else row.message_id,
            references=tuple(row.references or ()),
            subject=row.subject,
        )
    composed = compose(
        Draft(
            from_address=mailbox.address,
            from_name=owner.name if owner else "",
            to=request.to,
            cc=request.cc,
            bcc=request.bcc,
            subject=request.subject,
            text=request.text,
            html=request.html,
            attachments=request.attachments,
            parent=parent,
            case_id=record.id if record is not None and record.type == "case" else None,
        ),
        now=now,
    )
    check_limits(
        preset_of(smtp),
        recipients=len(composed.recipients),
        size=len(composed.data),
        used=usage(session, mailbox_id=mailbox.id, now=now),
    )
    entry = OutboxEntry(
        company_id=mailbox.company_id,
        mailbox_id=mailbox.id,
        message_id=composed.message_id,
        subject=composed.subject,
        envelope_from=composed.sender,
        recipients=list(composed.recipients),
        recipient_count=len(composed.recipients),
        size=len(composed.data),
        raw=composed.data,
        record_id=record.id if record else None,
        status="queued",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def get_entry(session: Session, entry_id: int) -> OutboxEntry:
    entry = session.get(OutboxEntry, entry_id)
    if entry is None:
        raise NotFound(
            f"No outbox entry {entry_id}.", hint="List them with `mailroom outbox list`."
        )
    return entry


def release(session: Session, *, entry_id: int, now: datetime | None = None) -> OutboxEntry:
    """Queue a held or failed entry again; an unknown outcome is then sent regardless."""
    entry = get_entry(session, entry_id)
    if entry.status not in ("held", "failed"):
        raise BadInput(
            f"Outbox entry {entry_id} is {entry.status}; only held or failed ones can be retried."
        )
    if entry.raw is None:
        raise BadInput(f"Outbox entry {entry_id} no longer has its message.")
    session.execute(
        update(OutboxAttempt)
        .where(OutboxAttempt.entry_id == entry.id, OutboxAttempt.outcome == "unknown")
        .values(outcome="released")
    )
    entry.status = "queued"
    entry.next_attempt_at = now or datetime.now(UTC)
    entry.error_kind = entry.last_error = entry.hint = None
    session.flush()
    return entry


def entry_summary(entry: OutboxEntry) -> dict[str, Any]:
    """The JSON shape `outbox list --json` prints for one entry."""
    return {
        "id": entry.id,
        "mailbox_id": entry.mailbox_id,
        "message_id": entry.message_id,
        "subject": entry.subject,
        "recipients": list(entry.recipients),
        "status": entry.status,
        "attempts": entry.attempts,
        "created_at": iso(entry.created_at),
        "sent_at": iso(entry.sent_at),
        "next_attempt_at": iso(entry.next_attempt_at) if entry.status == "queued" else None,
        "error_kind": entry.error_kind,
        "error": entry.last_error,
        "hint": entry.hint,
        "sent_folder": entry.sent_folder,
        "copy_note": entry.copy_note,
        "logged_message": entry.stored_message_id,
    }


def list_outbox(
    session: Session, *, company_id: int | None = None, limit: int = 100
) -> list[OutboxEntry]:
    query = select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)
    if company_id is not None:
        query = query.where(OutboxEntry.company_id == company_id)
    return list(session.scalars(query))


def mailbox_usage(
    session: Session, *, company_id: int | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per sending mailbox: the last 24 hours' count against the provider's daily limits."""
    now = now or datetime.now(UTC)
    query = select(Mailbox, MailboxSmtp).join(MailboxSmtp, MailboxSmtp.mailbox_id == Mailbox.id)
    if company_id is not None:
        query = query.where(Mailbox.company_id == company_id)
    rows = []
    for mailbox, smtp in session.execute(query.order_by(Mailbox.id)):
        used: Usage = usage(session, mailbox_id=mailbox.id, now=now)
        limits = preset_of(smtp).limits
        rows.append(
            {
                "mailbox_id": mailbox.id,
                "address": mailbox.address,
                "preset": smtp.preset,
                "messages_24h": used.messages,
                "recipients_24h": used.recipients,
                "messages_per_day": limits.messages_per_day,
                "recipients_per_day": limits.recipients_per_day,
            }
        )
    return rows
