"""The company's rules: add, edit, list, remove, reorder, and try one on stored mail.

Every rule is validated (compiled) before it is saved, so sync never meets a broken one.
`try_rule` shows what a rule would do to the last N stored messages without changing
anything: it reads only, and describes each outcome in the words `why` would use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import MatchRule, MessageSkip
from mailroom.db.models import (
    Company,
    Mailbox,
    Message,
    MessageCopy,
    MessageLink,
    Record,
    RecordEmail,
    User,
)
from mailroom.errors import BadInput, Conflict, NotFound
from mailroom.mail.blobs import BlobStore
from mailroom.mail.message import Address, ParsedMessage
from mailroom.mail.parse import parse_message
from mailroom.matching.classify import automation_reason
from mailroom.matching.directory import CompanyDirectory, load_directory
from mailroom.matching.extract import extract_fields
from mailroom.matching.rules import CREATE_TYPES, Rule, make_rule
from mailroom.matching.view import MailView


def add_rule(
    session: Session,
    *,
    company: Company,
    name: str,
    action: str,
    conditions: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    description: str = "",
    position: int | None = None,
) -> MatchRule:
    rule = make_rule(
        name=name, action=action, conditions=conditions, params=params, description=description
    )
    _check_owner(session, company, rule)
    if session.scalar(
        select(MatchRule.id).where(MatchRule.company_id == company.id, MatchRule.name == name)
    ):
        raise Conflict(f"A rule named {name!r} already exists.", hint="Remove it first.")
    rows = list_rules(session, company=company)
    row = MatchRule(
        company_id=company.id,
        name=name,
        description=description.strip(),
        conditions=dict(conditions),
        action=rule.action,
        params=dict(rule.params),
        position=0,
    )
    at = len(rows) if position is None else max(0, min(position - 1, len(rows)))
    rows.insert(at, row)
    session.add(row)
    _renumber(rows)
    session.flush()
    return row


def _check_owner(session: Session, company: Company, rule: Rule) -> None:
    if rule.action != "assign-owner":
        return
    owner = session.scalar(
        select(User.id).where(User.company_id == company.id, User.email == rule.params["owner"])
    )
    if owner is None:
        raise NotFound(
            f"No user {rule.params['owner']} in {company.name}.",
            hint="An owner is a user of the company: `mailroom user list`.",
        )


def edit_rule(
    session: Session,
    *,
    company: Company,
    name: str,
    action: str | None = None,
    conditions: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> MatchRule:
    """Change rule NAME in place; what is None stays as it was.

    The name and the position never change (rename = remove + add; move = `order`).
    `conditions` replaces all the old conditions. When the action changes and no `params`
    are given, the new action starts with none (so one that needs some is refused with its
    hint). Validated like `add_rule` before anything is written: a refused edit leaves the
    rule exactly as it was.
    """
    row = get_rule(session, company=company, name=name)
    new_action = row.action if action is None else action
    if params is None:
        params = row.params if new_action == row.action else {}
    rule = make_rule(
        name=row.name,
        action=new_action,
        conditions=row.conditions if conditions is None else conditions,
        params=params,
        description=row.description if description is None else description,
    )
    _check_owner(session, company, rule)
    if conditions is not None:
        row.conditions = dict(conditions)
    row.action = rule.action
    row.params = dict(rule.params)
    if description is not None:
        row.description = description.strip()
    session.flush()
    return row


def _renumber(rows: Sequence[MatchRule]) -> None:
    for number, row in enumerate(rows, start=1):
        row.position = number


def list_rules(session: Session, *, company: Company) -> list[MatchRule]:
    return list(
        session.scalars(
            select(MatchRule)
            .where(MatchRule.company_id == company.id)
            .order_by(MatchRule.position, MatchRule.id)
        )
    )


def get_rule(session: Session, *, company: Company, name: str) -> MatchRule:
    row = session.scalar(
        select(MatchRule).where(MatchRule.company_id == company.id, MatchRule.name == name)
    )
    if row is None:
        raise NotFound(f"No rule named {name!r}.", hint="See them with `mailroom rules list`.")
    return row


def remove_rule(session: Session, *, company: Company, name: str) -> None:
    session.delete(get_rule(session, company=company, name=name))
    session.flush()
    _renumber(list_rules(session, company=company))
    session.flush()


def order_rules(session: Session, *, company: Company, names: Sequence[str]) -> list[MatchRule]:
    """Put the named rules first, in this order; the others keep their order after them."""
    rows = list_rules(session, company=company)
    by_name = {r.name: r for r in rows}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise NotFound(f"No rule named {', '.join(map(repr, unknown))}.")
    if len(set(names)) != len(names):
        raise BadInput("A rule is named twice.")
    first = [by_name[n] for n in names]
    ordered = first + [r for r in rows if r.name not in set(names)]
    _renumber(ordered)
    session.flush()
    return ordered


def rule_json(row: MatchRule) -> dict[str, Any]:
    return {
        "name": row.name,
        "position": row.position,
        "description": row.description,
        "conditions": row.conditions,
        "action": row.action,
        "params": row.params,
        "enabled": row.enabled,
    }


@dataclass(frozen=True, slots=True)
class TrialRow:
    """What a rule would do to one stored message."""

    message_id: str
    subject: str
    matched: bool
    would: str

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "subject": self.subject,
            "matched": self.matched,
            "would": self.would,
        }


def _stored_parse(message: Message, blobs: BlobStore | None) -> ParsedMessage:
    raw = None if blobs is None else blobs.stored_raw(message.raw_sha256, message.raw_location)
    if raw is not None:
        return parse_message(raw)

    def addrs(values: Sequence[str]) -> tuple[Address, ...]:
        return tuple(Address(a) for a in values)

    return ParsedMessage(
        message_id=message.message_id,
        message_id_generated=message.message_id_generated,
        date=message.date_utc,
        subject=message.subject,
        from_=(Address(message.from_address, message.from_name),) if message.from_address else (),
        to=addrs(message.to_addresses),
        cc=addrs(message.cc_addresses),
        reply_to=addrs(message.reply_to_addresses),
        in_reply_to=message.in_reply_to,
        references=tuple(message.references),
        text=message.text_body,
        html=message.html_body,
    )


def try_rule(
    session: Session, *, company: Company, name: str, last: int, blobs: BlobStore | None
) -> list[TrialRow]:
    """What rule NAME would do to the company's last `last` stored messages (read only)."""
    if last < 1:
        raise BadInput("--last must be at least 1.")
    row = get_rule(session, company=company, name=name)
    rule = make_rule(name=row.name, action=row.action, conditions=row.conditions, params=row.params)
    directory = load_directory(session, company.id)
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.company_id == company.id)
            .order_by(Message.date_utc.desc().nulls_last(), Message.id.desc())
            .limit(last)
        )
    )
    skips = dict(
        session.execute(
            select(MessageSkip.message_id, MessageSkip.skipped_by).where(
                MessageSkip.message_id.in_([m.id for m in messages])
            )
        ).all()
    )
    rows = []
    for message in messages:
        parsed = _stored_parse(message, blobs)
        mailbox = session.scalar(
            select(Mailbox.address)
            .join(MessageCopy, MessageCopy.mailbox_id == Mailbox.id)
            .where(MessageCopy.message_id == message.id)
            .limit(1)
        )
        mail = MailView(
            parsed=parsed,
            direction=message.direction,
            mailbox_address=mailbox,
            automated=automation_reason(parsed),
        )
        matched = rule.check(mail)
        if not matched:
            would = "nothing (conditions do not hold)"
        elif message.id in skips:
            would = f"nothing: the message is not logged ({skips[message.id]} comes first)"
        else:
            would = _describe(session, rule, mail, message, directory)
        rows.append(TrialRow(message.message_id, message.subject, matched, would))
    return rows


def _linked(session: Session, message: Message) -> list[str]:
    return [
        f"{t}:{i}"
        for t, i in session.execute(
            select(Record.type, Record.id)
            .join(MessageLink, MessageLink.record_id == Record.id)
            .where(MessageLink.message_id == message.id)
        )
    ]


def _holder(session: Session, company_id: int, address: str, types: Sequence[str]) -> str | None:
    found = session.execute(
        select(Record.type, func.min(Record.id))
        .join(RecordEmail, RecordEmail.record_id == Record.id)
        .where(
            RecordEmail.company_id == company_id,
            RecordEmail.address == address,
            Record.type.in_(types),
        )
        .group_by(Record.type)
    ).first()
    return f"{found[0]}:{found[1]}" if found else None


def _describe(
    session: Session, rule: Rule, mail: MailView, message: Message, directory: CompanyDirectory
) -> str:
    if rule.action == "ignore":
        return f"ignore it (skipped as rule:{rule.name})"
    if rule.creates and mail.automated:
        return f"nothing: automatic mail never creates records ({mail.automated})"
    if rule.action in CREATE_TYPES:
        kind = CREATE_TYPES[rule.action]
        people = [*mail.parsed.reply_to, *mail.parsed.from_]
        person = next((a for a in people if not directory.is_internal(a.address)), None)
        if person is None:
            return f"nothing: no external Reply-To or From to create a {kind} from"
        if kind != "case":
            holder = _holder(session, message.company_id, person.address, ("lead", "contact"))
            if holder:
                return f"link {holder} (already holds {person.address})"
        return f"create a {kind} from {person.address}"
    if rule.action == "extract":
        found = extract_fields(
            list(rule.params.get("patterns", ())), f"{mail.parsed.subject}\n{mail.body}"
        )
        if not found.values:
            return "nothing extracted"
        kind = str(rule.params.get("type", "lead"))
        values = ", ".join(f"{k}={v!r}" for k, v in sorted(found.values.items()))
        holder = _holder(session, message.company_id, found.email, (kind,)) if found.email else None
        return f"update {holder} with {values}" if holder else f"create a {kind} with {values}"
    linked = _linked(session, message)
    if not linked:
        return "nothing: the message links to no record"
    if rule.action == "assign-owner":
        return f"set owner {rule.params['owner']} where unset on {', '.join(linked)}"
    return f"tag {', '.join(linked)} with {rule.params['tag']!r}"


def stored_parse(message: Message, blobs: BlobStore | None) -> ParsedMessage:
    """A stored message parsed again as ingestion saw it (its raw bytes when the blob is
    kept, else its stored columns), for running rules on stored mail."""
    return _stored_parse(message, blobs)
