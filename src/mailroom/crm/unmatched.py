"""Unmatched mail: external correspondents no record holds, grouped by person or domain.

A message is *unmatched* when it is linked to no record, was not skipped by a filter or
rule (bulk, auto-reply, confidential, blocklist, ignore rules: `MessageSkip`), and is not
internal mail. Its correspondents are its participants (any role) that are not internal
to the company (its domains and their subdomains, users, mailboxes, aliases) and that no
record holds as an email address. By domain, free-mail domains (gmail.com, …) and domains
an account already holds are left out: they name no company to create
(docs/decisions/0019-unmatched-mail-notes-and-tasks.md).

Each group counts its distinct unmatched messages, as the viewer may see them (strict
privacy counts only mail they may see: crm.access.visible_messages), with the newest date
(the Date header, else when it was stored). Pages are newest first, keyset-paged on
(last date, address or domain); SQL aggregates and orders, and internal and free-mail
groups are dropped in Python batch by batch, so a page stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, DateTime, and_, distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer, visible_messages
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Message, MessageAddress, MessageLink, RecordDomain, RecordEmail
from mailroom.db.times import as_utc
from mailroom.matching.directory import CompanyDirectory, load_directory
from mailroom.matching.index import is_free_mail

Group = Literal["person", "domain"]
BATCH = 200
MAX_BATCHES = 50


@dataclass(frozen=True, slots=True)
class UnmatchedGroup:
    """One correspondent (an address) or one domain, with its unmatched mail."""

    key: str
    messages: int
    last_date: datetime
    name: str


@dataclass(frozen=True, slots=True)
class UnmatchedPage:
    """A page of groups, newest first, and the position after its last one."""

    items: list[UnmatchedGroup]
    next: tuple[datetime, str] | None


def unmatched_message_clause(session: Session, viewer: Viewer) -> ColumnElement[bool]:
    """SQL for "this message is unmatched and the viewer may see it"."""
    return and_(
        visible_messages(session, viewer),
        Message.direction != "internal",
        ~exists().where(MessageLink.message_id == Message.id),
        ~exists().where(MessageSkip.message_id == Message.id),
    )


def _domain_of(session: Session) -> ColumnElement[Any]:
    address = MessageAddress.address
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(address, "@", 2)
    return func.substr(address, func.instr(address, "@") + 1)


def unmatched_groups(
    session: Session,
    *,
    viewer: Viewer,
    group: Group,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> UnmatchedPage:
    """One page of the viewer's unmatched correspondents (`person`) or domains (`domain`)."""
    directory = load_directory(session, viewer.company_id)
    held = set(
        session.scalars(
            select(RecordDomain.domain).where(RecordDomain.company_id == viewer.company_id)
        )
    )
    found: list[UnmatchedGroup] = []
    position = after
    for _ in range(MAX_BATCHES):
        rows = _batch(session, viewer, group, position)
        for row in rows:
            if _wanted(row.key, group, directory, held):
                found.append(row)
        if len(found) > limit or len(rows) < BATCH:
            break
        position = (rows[-1].last_date, rows[-1].key)
    more = len(found) > limit
    found = found[:limit]
    return UnmatchedPage(
        items=found, next=(found[-1].last_date, found[-1].key) if more and found else None
    )


def _wanted(key: str, group: Group, directory: CompanyDirectory, held: set[str]) -> bool:
    if group == "person":
        return not directory.is_internal(key)
    if not key or key in held or is_free_mail(key):
        return False
    return not directory.is_internal(f"x@{key}")


def _batch(
    session: Session, viewer: Viewer, group: Group, after: tuple[datetime, str] | None
) -> list[UnmatchedGroup]:
    key = MessageAddress.address if group == "person" else _domain_of(session)
    last = func.max(func.coalesce(Message.date_utc, Message.created_at), type_=DateTime(True))
    query = (
        select(key, func.count(distinct(Message.id)), last, func.max(MessageAddress.name))
        .join(Message, Message.id == MessageAddress.message_id)
        .where(
            MessageAddress.company_id == viewer.company_id,
            unmatched_message_clause(session, viewer),
            ~exists().where(
                RecordEmail.company_id == viewer.company_id,
                RecordEmail.address == MessageAddress.address,
            ),
        )
        .group_by(key)
    )
    if after is not None:
        date, tie = after
        query = query.having(or_(last < date, and_(last == date, key > tie)))
    rows = session.execute(query.order_by(last.desc(), key).limit(BATCH)).all()
    return [
        UnmatchedGroup(
            key=str(k),
            messages=int(n),
            last_date=_aware(d),
            name=str(name or "") if group == "person" else _domain_name(str(k)),
        )
        for k, n, d, name in rows
    ]


def _aware(value: datetime) -> datetime:
    aware = as_utc(value)
    assert aware is not None
    return aware


def _domain_name(domain: str) -> str:
    """A company name to offer for a domain: its first label, capitalised."""
    label = domain.partition(".")[0]
    return label[:1].upper() + label[1:]
