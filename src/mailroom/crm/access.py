"""Tenancy and rights: the one place that decides who sees which record, message and mailbox.

Every interface (pages, API, CLI) reads mail through the functions here, never with its own
queries, so the rules below hold everywhere:

- **Tenancy**: a `Viewer` belongs to one company; anything of another company is answered
  with `NotFound` — the same answer as for an id that does not exist, so ids leak nothing.
- **Visibility per company** (`CompanyPrivacy.visibility`):
  - `transparent` (default): everyone sees every logged message;
  - `strict`: a user sees only messages copied from a mailbox they own, or that they took
    part in (one of their addresses — sign-in address, mailbox addresses and aliases — is
    a participant).
- **Sharing per mailbox** (`MailboxSharing.level`, Twenty's model), for colleagues who see a
  message only because the company is transparent: `everything` (default), `subject`
  (subject and participants, no body or attachments), or `metadata` (participants and
  date only). A message seen by several mailboxes is shown at the most open of their
  levels; its owners and participants always see everything.
- **Mailboxes**: a member sees and manages their own; an admin sees and manages all of
  the company's. Mail content is never widened by the admin role.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from mailroom.crm.records import check_type
from mailroom.crm.timeline import TimelineEntry, entries_for_ids
from mailroom.db.models import (
    Attachment,
    Mailbox,
    MailboxAlias,
    Message,
    MessageAddress,
    MessageCopy,
    MessageLink,
    Record,
    RecordDomain,
    RecordEmail,
    User,
)
from mailroom.db.web_models import (
    DEFAULT_RETENTION_DAYS,
    SHARING_LEVELS,
    CompanyPrivacy,
    MailboxSharing,
)
from mailroom.errors import BadInput, NotFound

LEVEL_RANK = {"metadata": 0, "subject": 1, "everything": 2}
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user as access checks need them: company, role, addresses, mailboxes."""

    user_id: int
    company_id: int
    is_admin: bool
    email: str
    addresses: frozenset[str]
    mailbox_ids: frozenset[int]


def viewer_for(session: Session, user: User) -> Viewer:
    """The viewer `user` is: company, role, and every address that is theirs."""
    boxes = list(session.scalars(select(Mailbox).where(Mailbox.user_id == user.id)))
    addresses = {user.email, *(b.address for b in boxes)}
    if boxes:
        addresses.update(
            session.scalars(
                select(MailboxAlias.address).where(
                    MailboxAlias.mailbox_id.in_([b.id for b in boxes]),
                    MailboxAlias.approved.is_(True),  # a pending alias is anyone's claim
                )
            )
        )
    return Viewer(
        user_id=user.id,
        company_id=user.company_id,
        is_admin=user.role == "admin",
        email=user.email,
        addresses=frozenset(addresses),
        mailbox_ids=frozenset(b.id for b in boxes),
    )


def privacy_of(session: Session, company_id: int) -> CompanyPrivacy:
    """The company's privacy settings (the defaults, unsaved, when never changed)."""
    row = session.scalar(select(CompanyPrivacy).where(CompanyPrivacy.company_id == company_id))
    if row is None:
        row = CompanyPrivacy(
            company_id=company_id,
            visibility="transparent",
            retention_days=DEFAULT_RETENTION_DAYS,
            retention_enabled=False,  # off until an admin sets a period (issue 13)
        )
    return row


def sharing_levels(session: Session, mailbox_ids: Iterable[int]) -> dict[int, str]:
    """Each mailbox's sharing level (`everything` when none was set)."""
    ids = list(set(mailbox_ids))
    levels = dict.fromkeys(ids, "everything")
    if ids:
        for mailbox_id, level in session.execute(
            select(MailboxSharing.mailbox_id, MailboxSharing.level).where(
                MailboxSharing.mailbox_id.in_(ids)
            )
        ):
            levels[mailbox_id] = level
    return levels


def set_sharing(session: Session, *, viewer: Viewer, mailbox_id: int, level: str) -> None:
    """The owner (or an admin) sets what colleagues see of the mailbox's mail."""
    if level not in SHARING_LEVELS:
        raise BadInput(
            f"Unknown sharing level {level!r}.", hint=f"Use {', '.join(SHARING_LEVELS)}."
        )
    mailbox = get_mailbox(session, viewer=viewer, mailbox_id=mailbox_id)
    row = session.scalar(select(MailboxSharing).where(MailboxSharing.mailbox_id == mailbox.id))
    if row is None:
        session.add(MailboxSharing(mailbox_id=mailbox.id, level=level))
    else:
        row.level = level
    session.flush()


# ---- mailboxes -------------------------------------------------------------------------


def visible_mailboxes(session: Session, *, viewer: Viewer) -> list[Mailbox]:
    """The mailboxes `viewer` manages: an admin all of the company's, a member their own."""
    query = select(Mailbox).where(Mailbox.company_id == viewer.company_id).order_by(Mailbox.id)
    if not viewer.is_admin:
        query = query.where(Mailbox.user_id == viewer.user_id)
    return list(session.scalars(query))


def get_mailbox(session: Session, *, viewer: Viewer, mailbox_id: int) -> Mailbox:
    """A mailbox the viewer may see and manage (own, or any of the company for admins)."""
    mailbox = session.get(Mailbox, mailbox_id)
    if (
        mailbox is None
        or mailbox.company_id != viewer.company_id
        or (not viewer.is_admin and mailbox.user_id != viewer.user_id)
    ):
        raise NotFound(f"No mailbox {mailbox_id}.", hint="Open “My mailboxes” to see yours.")
    return mailbox


# ---- records ---------------------------------------------------------------------------


def get_record(session: Session, *, viewer: Viewer, record_type: str, record_id: int) -> Record:
    """The record, if it is the viewer's company's and of `record_type`; else NotFound."""
    record = session.get(Record, record_id)
    if record is None or record.company_id != viewer.company_id or record.type != record_type:
        raise NotFound(
            f"No {record_type} {record_id}.", hint="Search the records to find the right id."
        )
    return record


def search_records(
    session: Session,
    *,
    viewer: Viewer,
    record_type: str | None = None,
    q: str = "",
    after_id: int = 0,
    limit: int = 50,
) -> list[Record]:
    """Records of the viewer's company matching `q` by name, email or domain, by id."""
    query = select(Record).where(Record.company_id == viewer.company_id, Record.id > after_id)
    if record_type:
        query = query.where(Record.type == check_type(record_type))
    text = q.strip().lower()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        domain = text.lstrip("@")
        query = query.where(
            or_(
                Record.name.ilike(pattern, escape="\\"),
                Record.id.in_(
                    select(RecordEmail.record_id).where(
                        RecordEmail.company_id == viewer.company_id,
                        RecordEmail.address.like(pattern, escape="\\"),
                    )
                ),
                Record.id.in_(
                    select(RecordDomain.record_id).where(
                        RecordDomain.company_id == viewer.company_id,
                        RecordDomain.domain == domain,
                    )
                ),
            )
        )
    return list(session.scalars(query.order_by(Record.id).limit(max(1, min(limit, MAX_PAGE)))))


# ---- mail ------------------------------------------------------------------------------


def _visible_clause(session: Session, viewer: Viewer) -> ColumnElement[bool]:
    """SQL for “the viewer may see this message at some level” (company scoped)."""
    in_company = Message.company_id == viewer.company_id
    if privacy_of(session, viewer.company_id).visibility != "strict":
        return in_company
    own = (
        Message.id.in_(
            select(MessageCopy.message_id).where(
                MessageCopy.mailbox_id.in_(sorted(viewer.mailbox_ids))
            )
        )
        if viewer.mailbox_ids
        else false()
    )
    took_part = Message.id.in_(
        select(MessageAddress.message_id).where(
            MessageAddress.company_id == viewer.company_id,
            MessageAddress.address.in_(sorted(viewer.addresses)),
        )
    )
    return and_(in_company, or_(own, took_part))


def visible_messages(session: Session, viewer: Viewer) -> ColumnElement[bool]:
    """SQL for "the viewer may see this message at some level" (company scoped), for
    queries outside this module that aggregate over mail (crm.unmatched, the address book's
    recent correspondents) and must count only what the viewer may see."""
    return _visible_clause(session, viewer)


def access_levels(
    session: Session, *, viewer: Viewer, message_ids: Sequence[int]
) -> dict[int, str]:
    """message id → `everything`/`subject`/`metadata` for messages the viewer may see.

    Call it only with ids already known to be visible (in the viewer's company, and past
    `_visible_clause` in strict mode): it grades, it does not filter.
    """
    ids = list(message_ids)
    if not ids:
        return {}
    boxes: dict[int, set[int]] = {}
    for mid, box in session.execute(
        select(MessageCopy.message_id, MessageCopy.mailbox_id).where(
            MessageCopy.message_id.in_(ids)
        )
    ):
        boxes.setdefault(mid, set()).add(box)
    took_part = set(
        session.scalars(
            select(MessageAddress.message_id).where(
                MessageAddress.message_id.in_(ids),
                MessageAddress.address.in_(sorted(viewer.addresses)),
            )
        )
    )
    shared = sharing_levels(session, (b for bs in boxes.values() for b in bs))
    levels = {}
    for mid in ids:
        mine = boxes.get(mid, set())
        if mid in took_part or mine & viewer.mailbox_ids or not mine:
            levels[mid] = "everything"
        else:
            levels[mid] = max((shared[b] for b in mine), key=LEVEL_RANK.__getitem__)
    return levels


def get_message(session: Session, *, viewer: Viewer, message_id: int) -> tuple[Message, str]:
    """A message and the viewer's level of access to it; `NotFound` if not visible at all."""
    message = session.scalar(
        select(Message).where(Message.id == message_id, _visible_clause(session, viewer))
    )
    if message is None:
        raise NotFound(f"No message {message_id}.", hint="Open it from a record's timeline.")
    return message, access_levels(session, viewer=viewer, message_ids=[message.id])[message.id]


def get_attachment(
    session: Session, *, viewer: Viewer, message_id: int, attachment_id: int
) -> Attachment:
    """An attachment, only for viewers who may see the whole message."""
    _message, level = get_message(session, viewer=viewer, message_id=message_id)
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.message_id != message_id or level != "everything":
        raise NotFound(f"No attachment {attachment_id} on message {message_id}.")
    return attachment


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """One page of a record's timeline as the viewer may see it, and the next cursor."""

    entries: list[TimelineEntry]
    levels: dict[int, str]
    threads: dict[int, str]
    next: int | None


def redact(entry: TimelineEntry, level: str) -> TimelineEntry:
    """The entry as a viewer with `level` may see it (metadata hides the subject)."""
    if level != "metadata":
        return entry
    return dataclasses.replace(entry, subject="")


def visible_timeline_page(
    session: Session, *, viewer: Viewer, record: Record, after: int | None = None, limit: int = 50
) -> TimelinePage:
    """The page of the record's timeline `viewer` may see (newest first): messages they may
    not see left out, the rest redacted to their access level, which comes with each entry.
    The whole, unredacted timeline (the CLI's) is crm.timeline.timeline_entries.

    The page's ids come from walking `ix_message_links_record_date` from the cursor (keyset:
    date desc, then id desc; undated mail last), stopping after `limit + 1` visible ones, so
    a page costs the same for a record with 10,000 messages as for one with 50. In strict
    mode each candidate is checked by two indexed lookups (its copies, its participants)."""
    if record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    limit = max(1, min(limit, MAX_PAGE))
    ids = _page_ids(session, viewer, record, after=after, limit=limit + 1)
    entries = entries_for_ids(session, ids[:limit])
    levels = access_levels(session, viewer=viewer, message_ids=[e.id for e in entries])
    return TimelinePage(
        entries=[redact(e, levels[e.id]) for e in entries],
        levels=levels,
        threads=thread_keys(session, [e.id for e in entries]),
        next=entries[-1].id if len(ids) > limit and entries else None,
    )


def _page_ids(
    session: Session, viewer: Viewer, record: Record, *, after: int | None, limit: int
) -> list[int]:
    """Up to `limit` ids of the record's messages the viewer may see, in timeline order,
    after the message `after`: dated mail by (date, id) descending, then undated by id.

    Candidates come from the index in chunks; in strict mode each chunk (a short list of
    ids) is then checked for visibility, so the check never runs over more than a chunk
    whatever plan the database picks, and a viewer who may see little costs a few more
    chunks, each twice the last."""
    visible = _visible_link_clause(session, viewer)
    position: tuple[datetime | None, int] | None = None
    if after is not None:
        position = (_cursor_date(session, viewer, after), after)
    ids: list[int] = []
    want = limit
    while len(ids) < limit:
        chunk = _candidates(session, record, position, want)
        if not chunk:
            break
        position = chunk[-1]
        found = [message_id for _date, message_id in chunk]
        if visible is not None:
            seen = set(
                session.scalars(
                    select(MessageLink.message_id).where(
                        MessageLink.record_id == record.id,
                        MessageLink.message_id.in_(found),
                        visible,
                    )
                )
            )
            found = [message_id for message_id in found if message_id in seen]
        ids += found
        if len(chunk) < want:  # the record's links are all read
            break
        want = min(want * 2, 1000)
    return ids[:limit]


def _candidates(
    session: Session, record: Record, position: tuple[datetime | None, int] | None, n: int
) -> list[tuple[datetime | None, int]]:
    """The next `n` (date, message id) of the record's links after `position`, in timeline
    order, from `ix_message_links_record_date` alone: dated ones, then undated ones."""
    link = MessageLink
    base = select(link.message_date, link.message_id).where(link.record_id == record.id)
    rows: list[tuple[datetime | None, int]] = []
    if position is None or position[0] is not None:
        dated = base.where(link.message_date.is_not(None))
        if position is not None:
            date, message_id = position
            dated = dated.where(
                tuple_(link.message_date, link.message_id)
                < tuple_(literal(date, link.message_date.type), literal(message_id))
            )
        order = (link.message_date.desc(), link.message_id.desc())
        rows = [(d, m) for d, m in session.execute(dated.order_by(*order).limit(n))]
    if len(rows) < n:
        undated = base.where(link.message_date.is_(None))
        if position is not None and position[0] is None:
            undated = undated.where(link.message_id < position[1])
        more = undated.order_by(link.message_id.desc()).limit(n - len(rows))
        rows += [(d, m) for d, m in session.execute(more)]
    return rows


def _visible_link_clause(session: Session, viewer: Viewer) -> ColumnElement[bool] | None:
    """SQL for "the viewer may see the linked message", tested on the link row itself with
    correlated, indexed lookups (None when the company is transparent: every message).

    One EXISTS over a UNION ALL of the two lookups, not an OR of two EXISTS: PostgreSQL
    turns each of those into a hash of *every* message the viewer's mailboxes hold, built
    for each page, so the page would grow with the mailbox; a compound subquery it must
    run per link, two index probes, and stops at the page's end."""
    if privacy_of(session, viewer.company_id).visibility != "strict":
        return None
    message_id = MessageLink.message_id
    took_part = select(literal(1)).where(
        MessageAddress.message_id == message_id,
        MessageAddress.address.in_(sorted(viewer.addresses)),
    )
    if not viewer.mailbox_ids:
        return took_part.exists()
    own = select(literal(1)).where(
        MessageCopy.message_id == message_id,
        MessageCopy.mailbox_id.in_(sorted(viewer.mailbox_ids)),
    )
    return union_all(own, took_part).exists()


def _cursor_date(session: Session, viewer: Viewer, after: int) -> datetime | None:
    """The date of the cursor's message (None: undated); BadInput if it is no message of
    the viewer's company."""
    row = session.execute(
        select(Message.date_utc).where(Message.id == after, Message.company_id == viewer.company_id)
    ).first()
    if row is None:
        raise BadInput(f"Unknown cursor {after}.", hint="Start again without a cursor.")
    return row[0]


def thread_keys(session: Session, message_ids: Sequence[int]) -> dict[int, str]:
    """message id → its conversation's key: the first References id, else In-Reply-To, else
    its own Message-ID (RFC 5322 §3.6.4), so a page can be grouped into conversations."""
    keys: dict[int, str] = {}
    if not message_ids:
        return keys
    for mid, own, parent, refs in session.execute(
        select(Message.id, Message.message_id, Message.in_reply_to, Message.references).where(
            Message.id.in_(list(message_ids))
        )
    ):
        keys[mid] = (refs[0] if refs else None) or parent or own
    return keys


def require_admin(viewer: Viewer) -> None:
    """Admin pages and routes answer 404 to members, as if they did not exist."""
    if not viewer.is_admin:
        raise NotFound("This page is for admins.", hint="Ask an admin of your company.")


def visible_messages_clause(session: Session, *, viewer: Viewer) -> ColumnElement[bool]:
    """SQL for “the viewer may see this message at some level” (company scoped), for
    services that count or list mail as the viewer may see it (reports, filtered-mail
    notes)."""
    return _visible_clause(session, viewer)
