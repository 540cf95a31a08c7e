"""Rule actions on a stored, matched message: create, extract, assign an owner, tag.

Each action writes a `RuleOutcome` saying what it did, which `mailroom why` shows. The
invariants:
- a created record is deduplicated by address: a lead or contact is never created for an
  address some lead or contact already holds (that record is linked instead), a case
  never for a message already on a case (a reply in its thread);
- automatic mail (auto-replies, bounces, lists) never creates records, even when the
  company logs it;
- auto-reply loop protection: at most `max_created_per_sender` records per sender per UTC
  day (`SenderCounter`); past it the action is refused and says so;
- records are created from Reply-To first, then From (web-form mailers set Reply-To to
  the person who filled the form), never from an internal address;
- a link made by a rule has the reason `rule:NAME` and, like every automatic link, is
  never re-added once removed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm.records import EmailField, add_record, get_or_create_account
from mailroom.db.matching_models import RuleOutcome, SenderCounter
from mailroom.db.models import Company, Message, MessageLink, Record, RecordEmail
from mailroom.matching.directory import CompanyDirectory
from mailroom.matching.extract import extract_fields
from mailroom.matching.linker import PlannedLink, apply_links
from mailroom.matching.policy import Policy
from mailroom.matching.relink import relink_record
from mailroom.matching.rules import CREATE_TYPES, Rule
from mailroom.matching.view import MailView

PERSON_TYPES = ("lead", "contact")


@dataclass
class ActionContext:
    """One message's place while its rules' actions run."""

    session: Session
    message: Message
    mail: MailView
    policy: Policy
    directory: CompanyDirectory
    created: int = 0

    @property
    def company(self) -> Company:
        """The company whose policy applies."""
        company = self.session.get(Company, self.policy.company_id)
        assert company is not None
        return company


def apply_actions(
    session: Session,
    *,
    message: Message,
    mail: MailView,
    rules: Sequence[Rule],
    policy: Policy,
    directory: CompanyDirectory,
) -> int:
    """Apply the matched rules' actions in order; returns the number of records created."""
    ctx = ActionContext(session, message, mail, policy, directory)
    for rule in rules:
        if rule.creates and mail.automated:
            outcome = f"not applied: automatic mail never creates records ({mail.automated})"
        else:
            outcome = HANDLERS[rule.action](ctx, rule)
        session.add(
            RuleOutcome(
                message_id=message.id,
                company_id=policy.company_id,
                rule=rule.name,
                outcome=outcome[:2000],
            )
        )
    session.flush()
    return ctx.created


def person_of(ctx: ActionContext) -> tuple[str, str] | None:
    """(address, display name) of the external Reply-To, else the external From."""
    for group in (ctx.mail.parsed.reply_to, ctx.mail.parsed.from_):
        for addr in group:
            internal = ctx.directory.is_internal(addr.address)
            if not internal and addr.address not in ctx.policy.own_addresses:
                return addr.address, addr.name
    return None


def _link(ctx: ActionContext, record: Record, rule: Rule) -> None:
    apply_links(
        ctx.session,
        company_id=ctx.policy.company_id,
        plans={ctx.message.id: [PlannedLink(record.id, f"rule:{rule.name}")]},
    )


def _people(ctx: ActionContext, address: str, types: Sequence[str]) -> list[Record]:
    return list(
        ctx.session.scalars(
            select(Record)
            .join(RecordEmail, RecordEmail.record_id == Record.id)
            .where(
                RecordEmail.company_id == ctx.policy.company_id,
                RecordEmail.address == address,
                Record.type.in_(types),
            )
            .order_by(Record.id)
        ).unique()
    )


def _allowed(ctx: ActionContext, sender: str) -> str | None:
    """None if one more record may be created for `sender` today, else why not; counts it."""
    day = datetime.now(UTC).date().isoformat()
    session = ctx.session
    key = (SenderCounter.company_id == ctx.policy.company_id, SenderCounter.address == sender)
    row = session.scalar(select(SenderCounter).where(*key, SenderCounter.day == day))
    if row is None:
        row = SenderCounter(company_id=ctx.policy.company_id, address=sender, day=day, created=0)
        session.add(row)
    if row.created >= ctx.policy.max_created_per_sender:
        return (
            f"loop protection: {row.created} records already created from {sender} today "
            f"(at most {ctx.policy.max_created_per_sender})"
        )
    row.created += 1
    session.flush()
    return None


def _linked(ctx: ActionContext, types: Sequence[str] | None = None) -> list[Record]:
    query = (
        select(Record)
        .join(MessageLink, MessageLink.record_id == Record.id)
        .where(MessageLink.message_id == ctx.message.id)
        .order_by(MessageLink.id)
    )
    if types:
        query = query.where(Record.type.in_(types))
    return list(ctx.session.scalars(query))


def create(ctx: ActionContext, rule: Rule) -> str:
    """Actions `create-lead|contact|case`: the sender's record, linked (an existing one when
    deduplicated, else a new one, within the sender's daily cap); what was done."""
    record_type = CREATE_TYPES[rule.action]
    person = person_of(ctx)
    if person is None:
        return f"no external Reply-To or From to create a {record_type} from"
    address, name = person
    if record_type == "case":
        cases = _linked(ctx, ("case",))
        if cases:
            return f"deduplicated: already on {cases[0].ref}"
    else:
        existing = _people(ctx, address, PERSON_TYPES)
        if existing:
            _link(ctx, existing[0], rule)
            return f"deduplicated: {address} is {existing[0].ref}"
    refused = _allowed(ctx, address)
    if refused:
        return refused
    if record_type == "case":
        people = _people(ctx, address, ("contact",))
        record = add_record(
            ctx.session,
            company=ctx.company,
            record_type="case",
            name=(ctx.mail.parsed.subject or "(no subject)")[:300],
            fields={"requester": address, "status": "open"},
            account=(
                ctx.session.get(Record, people[0].account_id)
                if people and people[0].account_id
                else None
            ),
            relink=False,
        )
    else:
        record = add_record(
            ctx.session,
            company=ctx.company,
            record_type=record_type,
            name=name or address.partition("@")[0],
            emails=[EmailField("main", address)],
            relink=False,
        )
    _link(ctx, record, rule)
    if record_type != "case":
        relink_record(ctx.session, record)
    ctx.created += 1
    return f"created {record.ref} from {address}"


def extract(ctx: ActionContext, rule: Rule) -> str:
    """Action `extract`: create a record from fields the patterns find in the message."""
    record_type = str(rule.params.get("type", "lead"))
    text = f"{ctx.mail.parsed.subject}\n{ctx.mail.body}"
    found = extract_fields(list(rule.params.get("patterns", ())), text)
    if not found.values:
        notes = "; ".join(found.problems)
        return "nothing extracted" + (f" ({notes})" if notes else "")
    problems = f" ({'; '.join(found.problems)})" if found.problems else ""
    fields = found.record_fields(record_type)
    account_name = fields.pop("account", None) if record_type == "contact" else None
    types = PERSON_TYPES if record_type in PERSON_TYPES else (record_type,)
    existing = _people(ctx, found.email, types) if found.email else []
    if existing:
        record = existing[0]
        added = {k: v for k, v in fields.items() if k not in record.fields}
        if added:
            record.fields = {**record.fields, **added}
        if not record.name and found.values.get("name"):
            record.name = found.values["name"]
        _link(ctx, record, rule)
        what = ", ".join(sorted(added)) or "nothing new"
        return f"updated {record.ref} ({what}){problems}"
    person = person_of(ctx)
    refused = _allowed(ctx, found.email or (person[0] if person else "unknown"))
    if refused:
        return refused
    company = ctx.company
    record = add_record(
        ctx.session,
        company=company,
        record_type=record_type,
        name=found.values.get("name") or found.email or ctx.mail.parsed.subject[:300],
        emails=[EmailField("main", found.email)] if found.email else [],
        account=(
            get_or_create_account(ctx.session, company=company, name=str(account_name))
            if account_name
            else None
        ),
        fields=fields,
        relink=False,
    )
    _link(ctx, record, rule)
    relink_record(ctx.session, record)
    ctx.created += 1
    return f"created {record.ref} with {', '.join(sorted(found.values))}{problems}"


def _update_linked(ctx: ActionContext, change: Callable[[Record], bool]) -> list[str]:
    changed = []
    for record in _linked(ctx):
        if change(record):
            changed.append(record.ref)
    ctx.session.flush()
    return changed


def assign_owner(ctx: ActionContext, rule: Rule) -> str:
    """Action `assign_owner`: set the owner of linked records that have none."""
    owner = str(rule.params["owner"])

    def change(record: Record) -> bool:
        if record.fields.get("owner"):
            return False
        record.fields = {**record.fields, "owner": owner}
        return True

    changed = _update_linked(ctx, change)
    if not changed:
        return "no linked record without an owner"
    return f"owner {owner} on {', '.join(changed)}"


def tag(ctx: ActionContext, rule: Rule) -> str:
    """Action `tag`: add a tag to every linked record."""
    value = str(rule.params["tag"])

    def change(record: Record) -> bool:
        tags: list[Any] = list(record.fields.get("tags") or [])
        if value in tags:
            return False
        record.fields = {**record.fields, "tags": [*tags, value]}
        return True

    changed = _update_linked(ctx, change)
    if not changed:
        return (
            f"every linked record already has the tag {value!r}"
            if _linked(ctx)
            else ("no linked record to tag")
        )
    return f"tagged {', '.join(changed)} {value!r}"


def _ignore(ctx: ActionContext, rule: Rule) -> str:  # decided in filters.decide
    return "ignored"


HANDLERS: dict[str, Callable[[ActionContext, Rule], str]] = {
    "ignore": _ignore,
    "create-lead": create,
    "create-contact": create,
    "create-case": create,
    "extract": extract,
    "assign-owner": assign_owner,
    "tag": tag,
}
