"""What pages and the API show of records, messages and mailboxes — one shape for both.

Everything a viewer sees of a message passes through `message_view`, which applies the
access level `security.access` granted: `subject` hides the body and attachments,
`metadata` also the subject. The HTML is always the sanitised one (mail.html).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm.access import sharing_levels
from mailroom.crm.records import record_summary
from mailroom.crm.timeline import TimelineEntry, iso_date
from mailroom.db.models import Attachment, Mailbox, MailboxError, Message, MessageLink, Record
from mailroom.mail.html import sanitise_html

STATUS_WORDS = {
    "ok": "OK",
    "pending": "Waiting for the first sync",
    "syncing": "Syncing",
    "error": "Error",
    "disabled": "Disabled",
    "failed": "Stopped: needs your fix",
}


def record_view(record: Record) -> dict[str, Any]:
    return record_summary(record)


def timeline_item(entry: TimelineEntry, *, level: str, thread: str) -> dict[str, Any]:
    return {**entry.to_json(), "access": level, "thread": thread}


def message_view(
    session: Session, message: Message, *, level: str, images: bool, base: str = "/api/v1"
) -> dict[str, Any]:
    """The message as `level` allows; `images` lets remote images through the sanitiser."""
    full = level == "everything"
    safe = sanitise_html(message.html_body or "", allow_remote_images=images) if full else None
    attachments = (
        list(
            session.scalars(
                select(Attachment)
                .where(Attachment.message_id == message.id)
                .order_by(Attachment.id)
            )
        )
        if full
        else []
    )
    links = {
        f"{rtype}:{rid}": reason
        for rtype, rid, reason in session.execute(
            select(Record.type, Record.id, MessageLink.reason)
            .join(Record, Record.id == MessageLink.record_id)
            .where(MessageLink.message_id == message.id)
            .order_by(MessageLink.id)
        )
    }
    return {
        "id": message.id,
        "message_id": message.message_id,
        "subject": message.subject if level != "metadata" else "",
        "from": message.from_address,
        "from_name": message.from_name,
        "to": list(message.to_addresses),
        "cc": list(message.cc_addresses),
        "date": iso_date(message),
        "direction": message.direction,
        "text": message.text_body if full else "",
        "html": safe.html if safe else "",
        "blocked_images": safe.blocked_images if safe else 0,
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "url": f"{base}/messages/{message.id}/attachments/{a.id}",
            }
            for a in attachments
        ],
        "records": links,
        "access": level,
        "parse_error": message.parse_error,
    }


def last_hint(session: Session, mailbox: Mailbox) -> str | None:
    """How to fix the mailbox's last error (the sync engine's hint, else the error log's)."""
    if mailbox.status != "error" and not mailbox.last_error:
        return None
    hint = getattr(mailbox, "error_hint", None)
    if hint:
        return str(hint)
    return session.scalar(
        select(MailboxError.hint)
        .where(MailboxError.mailbox_id == mailbox.id)
        .order_by(MailboxError.id.desc())
        .limit(1)
    )


def mailbox_views(session: Session, mailboxes: list[Mailbox]) -> list[dict[str, Any]]:
    shared = sharing_levels(session, (m.id for m in mailboxes))
    return [
        {
            "id": m.id,
            "address": m.address,
            "user_id": m.user_id,
            "protocol": m.protocol,
            "host": m.host,
            "port": m.port,
            "status": m.status,
            "status_words": STATUS_WORDS.get(m.status, m.status),
            "last_error": m.last_error,
            "hint": last_hint(session, m),
            "last_success_at": m.last_success_at.isoformat() if m.last_success_at else None,
            "enabled": m.enabled,
            "sharing": shared[m.id],
            "folders": list(m.folders),
        }
        for m in mailboxes
    ]


def error_log(session: Session, mailbox: Mailbox, *, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(MailboxError)
        .where(MailboxError.mailbox_id == mailbox.id)
        .order_by(MailboxError.id.desc())
        .limit(limit)
    )
    return [
        {"at": e.at.isoformat(), "kind": e.kind, "message": e.message, "hint": e.hint} for e in rows
    ]
