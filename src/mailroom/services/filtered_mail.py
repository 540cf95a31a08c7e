"""Say what was filtered: a record's skipped mail, mail hidden by privacy, and the mail a
new blocklist entry would have kept out.

- `filtered_for_record`: the stored messages **of a record** that were not logged — a
  participant holds one of the record's addresses (an account's: or is at one of its
  domains) and the message has a `MessageSkip` — counted per reason (bulk or automatic,
  confidential, blocklist, participation, a rule), as the viewer may see them; plus, under
  strict privacy, how many of the record's logged messages the viewer may not see.
- `blocked_logged` / `remove_blocked_logged`: after blocking an address or `@domain`, the
  mail it already let in. Precisely: messages of the company that are logged now (no
  skip), with a participant the entry blocks, other than the addresses of the company's
  mailboxes (never blocked). Removing gives each the skip `filter:blocklist` — exactly
  what ingestion would have decided had the entry existed then — and removes its
  automatic links; links made by hand stay (a person linked it on purpose), and the
  message itself stays stored, for `why` and deduplication. A user's own entry only
  concerns mail copied from that user's mailboxes. Admins only; a second run finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, cast, delete, false, func, or_, select
from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer, privacy_of, require_admin, visible_messages_clause
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import (
    Mailbox,
    MailboxAlias,
    Message,
    MessageAddress,
    MessageCopy,
    MessageLink,
    Record,
    User,
)
from mailroom.errors import NotFound
from mailroom.matching.blocklist import clean_entry
from mailroom.matching.manual import MANUAL

REASON_WORDS = {
    "filter:bulk": "bulk, list or automatic mail (auto-replies, bounces)",
    "filter:confidential": "marked confidential",
    "filter:blocklist": "from or to a blocked address",
    "filter:participation": "a thread the mailbox's owner took no part in",
    "filter:internal": "among colleagues only",
}
LIST_LIMIT = 100


def reason_words(skipped_by: str) -> str:
    """A skip reason in words (`rule:NAME` → "ignored by rule NAME")."""
    if skipped_by.startswith("rule:"):
        return f"ignored by rule {skipped_by[5:]}"
    return REASON_WORDS.get(skipped_by, skipped_by)


@dataclass(frozen=True, slots=True)
class FilteredSummary:
    """A record's mail that is not on its timeline: skipped per reason, hidden by privacy."""

    skipped: dict[str, int] = field(default_factory=dict)
    hidden: int = 0

    @property
    def total_skipped(self) -> int:
        """How many of the record's messages were skipped, all reasons together."""
        return sum(self.skipped.values())

    def to_json(self) -> dict[str, Any]:
        """The summary as the API shows it."""
        return {
            "skipped": [
                {"reason": r, "words": reason_words(r), "messages": n}
                for r, n in self.skipped.items()
            ],
            "hidden_by_privacy": self.hidden,
        }


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _of_record(record: Record) -> ColumnElement[bool]:
    """SQL for "one of the message's people is the record's" on the message row itself: a
    skipped message has no participant rows (ingestion stores only its header columns), so
    From is compared and the To, Cc and Reply-To lists are searched as JSON text."""
    lists = [
        cast(column, String)
        for column in (Message.to_addresses, Message.cc_addresses, Message.reply_to_addresses)
    ]
    tests: list[ColumnElement[bool]] = []
    addresses = [e.address for e in record.emails]
    if addresses:
        tests.append(Message.from_address.in_(addresses))
    for address in addresses:
        tests += [text.like(f'%"{_like(address)}"%', escape="\\") for text in lists]
    for d in record.domains:
        domain = _like(d.domain)
        tests.append(Message.from_address.like(f"%@{domain}", escape="\\"))
        tests += [text.like(f'%@{domain}"%', escape="\\") for text in lists]
    return or_(*tests) if tests else false()


def filtered_for_record(session: Session, *, viewer: Viewer, record: Record) -> FilteredSummary:
    """The record's skipped mail per reason and its mail hidden by privacy, for `viewer`."""
    if record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    skipped: dict[str, int] = {}
    if record.emails or record.domains:
        rows = session.execute(
            select(MessageSkip.skipped_by, func.count(func.distinct(MessageSkip.message_id)))
            .join(Message, Message.id == MessageSkip.message_id)
            .where(
                MessageSkip.company_id == viewer.company_id,
                _of_record(record),
                MessageSkip.skipped_by != "filter:internal",
                visible_messages_clause(session, viewer=viewer),
            )
            .group_by(MessageSkip.skipped_by)
            .order_by(MessageSkip.skipped_by)
        )
        skipped = {reason: count for reason, count in rows}
    hidden = 0
    if privacy_of(session, viewer.company_id).visibility == "strict":
        linked = select(MessageLink.message_id).where(MessageLink.record_id == record.id)
        total = session.scalar(select(func.count()).select_from(linked.subquery())) or 0
        seen = (
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.id.in_(linked), visible_messages_clause(session, viewer=viewer))
            )
            or 0
        )
        hidden = total - seen
    return FilteredSummary(skipped=skipped, hidden=hidden)


def filtered_messages(
    session: Session, *, viewer: Viewer, record: Record, limit: int = LIST_LIMIT
) -> list[dict[str, Any]]:
    """The record's skipped messages the viewer may see, newest first, each with why."""
    if record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    if not (record.emails or record.domains):
        return []
    rows = session.execute(
        select(Message, MessageSkip.skipped_by, MessageSkip.detail)
        .join(MessageSkip, MessageSkip.message_id == Message.id)
        .where(
            Message.company_id == viewer.company_id,
            _of_record(record),
            MessageSkip.skipped_by != "filter:internal",
            visible_messages_clause(session, viewer=viewer),
        )
        .order_by(Message.date_utc.desc().nulls_last(), Message.id.desc())
        .limit(max(1, min(limit, LIST_LIMIT)))
    )
    return [
        {
            "id": message.id,
            "message_id": message.message_id,
            "date": message.date_utc.isoformat() if message.date_utc else None,
            "subject": message.subject,
            "from": message.from_address,
            "reason": skipped_by,
            "words": reason_words(skipped_by),
            "detail": detail,
        }
        for message, skipped_by, detail in rows
    ]


def _own_addresses(session: Session, company_id: int) -> list[str]:
    boxes = select(Mailbox.id).where(Mailbox.company_id == company_id)
    own = set(session.scalars(select(Mailbox.address).where(Mailbox.company_id == company_id)))
    own.update(
        session.scalars(select(MailboxAlias.address).where(MailboxAlias.mailbox_id.in_(boxes)))
    )
    return sorted(own)


def _blocked_query(session: Session, *, company_id: int, entry: str, user_email: str | None) -> Any:
    """Ids of the company's logged messages the entry would have kept out."""
    if entry.startswith("@"):
        domain = _like(entry[1:])
        hit = or_(
            MessageAddress.address.like(f"%@{domain}", escape="\\"),
            MessageAddress.address.like(f"%.{domain}", escape="\\"),
        )
    else:
        hit = MessageAddress.address == entry
    participants = select(MessageAddress.message_id).where(
        MessageAddress.company_id == company_id,
        hit,
        MessageAddress.address.not_in(_own_addresses(session, company_id)),
    )
    skipped = select(MessageSkip.message_id).where(MessageSkip.company_id == company_id)
    query = select(Message.id).where(
        Message.company_id == company_id,
        Message.id.in_(participants),
        Message.id.not_in(skipped),
    )
    if user_email is not None:
        boxes = (
            select(Mailbox.id)
            .join(User, User.id == Mailbox.user_id)
            .where(User.company_id == company_id, User.email == user_email)
        )
        query = query.where(
            Message.id.in_(select(MessageCopy.message_id).where(MessageCopy.mailbox_id.in_(boxes)))
        )
    return query


def _admin_company(viewer: Viewer | None, company_id: int) -> int:
    """The company acted on: an admin viewer's (web, API), or the one the CLI named."""
    if viewer is None:
        return company_id
    require_admin(viewer)
    return viewer.company_id


def blocked_logged(
    session: Session,
    *,
    entry: str,
    viewer: Viewer | None = None,
    company_id: int = 0,
    user_email: str | None = None,
) -> int:
    """How many logged messages blocking `entry` would remove from the timelines (an admin
    `viewer` for the page and API, or `company_id` for the CLI)."""
    company_id = _admin_company(viewer, company_id)
    query = _blocked_query(
        session, company_id=company_id, entry=clean_entry(entry), user_email=user_email
    )
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def remove_blocked_logged(
    session: Session,
    *,
    entry: str,
    viewer: Viewer | None = None,
    company_id: int = 0,
    user_email: str | None = None,
) -> int:
    """Skip (`filter:blocklist`) and unlink the logged mail `entry` blocks; hand-made links
    stay. Returns how many messages were removed from the timelines; flushes, the caller
    commits."""
    company_id = _admin_company(viewer, company_id)
    entry = clean_entry(entry)
    ids = list(
        session.scalars(
            _blocked_query(session, company_id=company_id, entry=entry, user_email=user_email)
        )
    )
    for message_id in ids:
        session.add(
            MessageSkip(
                message_id=message_id,
                company_id=company_id,
                skipped_by="filter:blocklist",
                detail=f"blocked by {entry} after it was logged",
            )
        )
    if ids:
        session.execute(
            delete(MessageLink).where(MessageLink.message_id.in_(ids), MessageLink.reason != MANUAL)
        )
    session.flush()
    return len(ids)
