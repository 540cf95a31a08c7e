"""A record's email timeline: the messages linked to it, newest first.

One query pages the links (by message date, then id, so the order is total), and two more
fetch every entry's other records and mailboxes for the whole page at once — never one
query per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, load_only

from mailroom.db.models import Message, MessageCopy, MessageLink, Record
from mailroom.matching.conversations import conversation_keys


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One message as a timeline shows it."""

    id: int
    message_id: str
    date: str | None
    direction: str
    from_: str | None
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    records: list[str]
    mailboxes: list[int]
    reasons: dict[str, str]
    parse_error: str | None
    # Opaque, equal for every message of one conversation and only for them
    # (matching.conversations: References/In-Reply-To chains, else the subject fallback).
    conversation: str = ""

    def to_json(self) -> dict[str, Any]:
        """The entry as `mailroom timeline --json` and the API print it."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "date": self.date,
            "direction": self.direction,
            "from": self.from_,
            "from_name": self.from_name,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "records": self.records,
            "mailboxes": self.mailboxes,
            "reasons": self.reasons,
            "parse_error": self.parse_error,
            "conversation": self.conversation,
        }


def iso_date(message: Message) -> str | None:
    """The message's date in ISO 8601, with the offset it was sent with, else in UTC; None
    if it has no date."""
    if message.date_text:
        return message.date_text
    if message.date_utc is None:
        return None
    value = message.date_utc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


# What an entry shows: the bodies (most of a message row's bytes) stay unread.
_ENTRY_COLUMNS = load_only(
    Message.id,
    Message.message_id,
    Message.date_utc,
    Message.date_text,
    Message.direction,
    Message.from_address,
    Message.from_name,
    Message.to_addresses,
    Message.cc_addresses,
    Message.subject,
    Message.parse_error,
)


def timeline_entries(
    session: Session,
    *,
    records: Sequence[Record],
    limit: int | None = None,
    where: ColumnElement[bool] | None = None,
) -> list[TimelineEntry]:
    """Every message linked to any of `records` (one record, or all with one address), as
    timeline entries, unredacted: the CLI's view. A signed-in viewer's page, with what they
    may not see left out or redacted, is crm.access.visible_timeline_page.

    `where` narrows the messages further (crm.access passes visibility and paging).
    """
    if not records:
        return []
    record_ids = [r.id for r in records]
    query = (
        select(Message)
        .where(
            Message.id.in_(
                select(MessageLink.message_id).where(MessageLink.record_id.in_(record_ids))
            )
        )
        .order_by(Message.date_utc.desc().nulls_last(), Message.id.desc())
    )
    if where is not None:
        query = query.where(where)
    if limit:
        query = query.limit(limit)
    return _entries(session, list(session.scalars(query.options(_ENTRY_COLUMNS))))


def entries_for_ids(session: Session, message_ids: Sequence[int]) -> list[TimelineEntry]:
    """Timeline entries of the given messages, in the order given (crm.access has chosen
    and ordered the page): four indexed queries, however long the record's history."""
    ids = list(message_ids)
    if not ids:
        return []
    found = {
        m.id: m
        for m in session.scalars(select(Message).where(Message.id.in_(ids)).options(_ENTRY_COLUMNS))
    }
    return _entries(session, [found[i] for i in ids if i in found])


def _entries(session: Session, messages: list[Message]) -> list[TimelineEntry]:
    """The messages as entries, with their records, mailboxes and conversations (one query
    each for all of them, never one per message)."""
    ids = [m.id for m in messages]
    links: dict[int, dict[str, str]] = {}
    for message_id, rtype, rid, reason in session.execute(
        select(MessageLink.message_id, Record.type, Record.id, MessageLink.reason)
        .join(Record, Record.id == MessageLink.record_id)
        .where(MessageLink.message_id.in_(ids))
        .order_by(MessageLink.id)
    ):
        links.setdefault(message_id, {})[f"{rtype}:{rid}"] = reason
    boxes: dict[int, set[int]] = {}
    for message_id, mailbox_id in session.execute(
        select(MessageCopy.message_id, MessageCopy.mailbox_id).where(
            MessageCopy.message_id.in_(ids)
        )
    ):
        boxes.setdefault(message_id, set()).add(mailbox_id)
    conversations = conversation_keys(session, ids)
    return [
        TimelineEntry(
            id=m.id,
            message_id=m.message_id,
            date=iso_date(m),
            direction=m.direction,
            from_=m.from_address,
            from_name=m.from_name,
            to=list(m.to_addresses),
            cc=list(m.cc_addresses),
            subject=m.subject,
            records=list(links.get(m.id, {})),
            mailboxes=sorted(boxes.get(m.id, ())),
            reasons=links.get(m.id, {}),
            parse_error=m.parse_error,
            conversation=conversations[m.id],
        )
        for m in messages
    ]
