"""What pages and the API show of records and messages — one shape for both.

(Mailboxes: `services.mailboxes.mailbox_json`, one shape for the CLI and the API.)

Everything a viewer sees of a message passes through `message_view`, which applies the
access level `security.access` granted: `subject` hides the body and attachments,
`metadata` also the subject. The HTML is always the sanitised one (mail.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm.records import record_summary
from mailroom.crm.timeline import TimelineEntry, iso_date
from mailroom.db.models import Attachment, Message, MessageCopy, MessageLink, Record
from mailroom.mail.html import sanitise_html
from mailroom.matching.reasons import reason_words


def record_view(record: Record) -> dict[str, Any]:
    return record_summary(record)


def timeline_item(entry: TimelineEntry, *, level: str, thread: str) -> dict[str, Any]:
    return {**entry.to_json(), "access": level, "thread": thread}


def message_labels(session: Session, message_id: int) -> list[str]:
    """The labels of the message's live copies (Gmail's X-GM-LABELS, sync/gmail.py), once
    each, sorted: `\\Inbox`, `\\Sent`, "Customers" … ([] for mail from other servers).
    Shown with the body only (`everything`): a label is its owner's filing."""
    found: set[str] = set()
    for labels in session.scalars(
        select(MessageCopy.labels).where(
            MessageCopy.message_id == message_id, MessageCopy.gone_at.is_(None)
        )
    ):
        found.update(labels or [])
    return sorted(found)


def label_name(label: str) -> str:
    """A label as a person reads it: Gmail's system labels without their backslash."""
    return label[1:] if label.startswith("\\") else label


def message_view(
    session: Session,
    message: Message,
    *,
    level: str,
    images: bool,
    base: str = "/api/v1",
    inline: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The message as `level` allows; `images` lets remote images through the sanitiser,
    `inline` (ingest.bodies.inline_images) shows its `cid:` images."""
    full = level == "everything"
    safe = (
        sanitise_html(message.html_body or "", allow_remote_images=images, inline=inline)
        if full
        else None
    )
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
    rows = session.execute(
        select(Record.type, Record.id, Record.name, MessageLink.reason)
        .join(Record, Record.id == MessageLink.record_id)
        .where(MessageLink.message_id == message.id)
        .order_by(MessageLink.id)
    ).all()
    links = {f"{rtype}:{rid}": reason for rtype, rid, _name, reason in rows}
    linked = [
        {
            "record": f"{rtype}:{rid}",
            "type": rtype,
            "id": rid,
            "name": name,
            "reason": reason,
            "why": reason_words(reason),
        }
        for rtype, rid, name, reason in rows
    ]
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
        "linked": linked,
        "labels": message_labels(session, message.id) if full else [],
        "access": level,
        "parse_error": message.parse_error,
    }
