"""CRM records and their email addresses: create, update, find and list.

Every record type (lead, contact, account, case, opportunity) holds any number of email
addresses, each under a field name (`main`, `secondary`, `assistant`, any custom name);
accounts also hold domains. A record is addressed as `TYPE:ID` everywhere (CLI, API,
timeline). Adding a record or an address links the mail already stored (retro-linking).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import RECORD_TYPES, Company, Record, RecordDomain, RecordEmail
from mailroom.digits import is_number
from mailroom.errors import BadInput, Conflict, NotFound
from mailroom.mail.addresses import normalise
from mailroom.mail.domains import normalise_domain
from mailroom.matching.index import is_free_mail


@dataclass(frozen=True, slots=True)
class EmailField:
    """An address to give a record, under a field name."""

    field: str
    address: str


def check_type(record_type: str) -> str:
    """The record type, lower-cased; BadInput if it is not one of RECORD_TYPES."""
    kind = record_type.strip().lower()
    if kind not in RECORD_TYPES:
        raise BadInput(
            f"Unknown record type {record_type!r}.", hint=f"Use one of: {', '.join(RECORD_TYPES)}."
        )
    return kind


def clean_email(raw: str) -> str:
    """The normalised address; BadInput if `raw` is not an email address."""
    address = normalise(raw)
    if address is None:
        raise BadInput(f"{raw!r} is not an email address.")
    return address


def add_record(
    session: Session,
    *,
    company: Company,
    record_type: str,
    name: str,
    emails: Sequence[EmailField] = (),
    domains: Sequence[str] = (),
    account: Record | None = None,
    fields: dict[str, Any] | None = None,
    relink: bool = True,
) -> Record:
    """Create a record with its addresses, then link the stored mail that concerns it
    (`relink=False` lets a caller link one message with its own reason first)."""
    record = Record(
        company_id=company.id,
        type=check_type(record_type),
        name=name.strip(),
        account_id=account.id if account else None,
        fields=dict(fields or {}),
    )
    session.add(record)
    session.flush()
    set_emails(session, record, emails)
    set_domains(session, record, domains)
    session.flush()
    if relink:
        from mailroom.matching.relink import relink_record  # matching's rules: not for reads

        relink_record(session, record)
    return record


def update_record(
    session: Session,
    *,
    record: Record,
    name: str | None = None,
    emails: Sequence[EmailField] = (),
    domains: Sequence[str] = (),
    account: Record | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Edit a record; when what it matches changed, link the stored mail it now matches
    (retro-linking, the same matcher as sync). True if anything changed."""
    changed = False
    if name is not None and name.strip() and name.strip() != record.name:
        record.name = name.strip()
        changed = True
    if fields:
        merged = {**record.fields, **fields}
        if merged != record.fields:
            record.fields = merged
            changed = True
    matching = set_emails(session, record, emails)
    matching = set_domains(session, record, domains) or matching
    if account is not None and record.account_id != account.id:
        record.account_id = account.id
        matching = True
    session.flush()
    if matching or (fields and record.type == "opportunity"):
        from mailroom.matching.relink import relink_record

        relink_record(session, record)
    return changed or matching


def set_emails(session: Session, record: Record, emails: Iterable[EmailField]) -> bool:
    """Add addresses the record lacks, or move one to a new field; True if anything changed."""
    existing = {e.address: e for e in record.emails}
    changed = False
    for item in emails:
        address = clean_email(item.address)
        field = item.field.strip() or "main"
        if address in existing:
            if existing[address].field != field and field != "main":
                existing[address].field = field
                changed = True
            continue
        email = RecordEmail(company_id=record.company_id, field=field, address=address)
        record.emails.append(email)
        existing[address] = email
        changed = True
    if changed:
        session.flush()
    return changed


def set_domains(session: Session, record: Record, domains: Iterable[str]) -> bool:
    """Add the account domains it lacks; True if any was added. Free-mail domains are refused."""
    have = {d.domain for d in record.domains}
    changed = False
    for raw in domains:
        domain = normalise_domain(raw)
        if domain is None:
            raise BadInput(f"{raw!r} is not a domain name.")
        if is_free_mail(domain):
            raise BadInput(
                f"{domain} is a free-mail domain: it cannot identify one account.",
                hint="Give the account's own domain, or the people's addresses as contacts.",
            )
        if domain not in have:
            record.domains.append(RecordDomain(company_id=record.company_id, domain=domain))
            have.add(domain)
            changed = True
    return changed


def remove_emails(record: Record, addresses: Iterable[str]) -> list[str]:
    """Remove these addresses from the record; returns the ones it held (normalised)."""
    wanted = {clean_email(a) for a in addresses}
    gone = [e for e in record.emails if e.address in wanted]
    for email in gone:
        record.emails.remove(email)
    return [e.address for e in gone]


def remove_domains(record: Record, domains: Iterable[str]) -> list[str]:
    """Remove these domains from the record; returns the ones it held (normalised)."""
    wanted = {normalise_domain(d) or d.strip().lower() for d in domains}
    gone = [d for d in record.domains if d.domain in wanted]
    for domain in gone:
        record.domains.remove(domain)
    return [d.domain for d in gone]


def check_main_address_free(
    session: Session, *, record: Record, addresses: Iterable[str], exclude: Iterable[int] = ()
) -> None:
    """Conflict (HTTP 409) when another record of the same type already holds one of
    `addresses` (the record's main ones), in any field; the message names that record."""
    wanted = sorted({clean_email(a) for a in addresses})
    if not wanted:
        return
    skip = {record.id, *exclude} - {None}
    holder = session.execute(
        select(Record.id, RecordEmail.address)
        .join(RecordEmail, RecordEmail.record_id == Record.id)
        .where(
            RecordEmail.company_id == record.company_id,
            RecordEmail.address.in_(wanted),
            Record.type == record.type,
            Record.id.not_in(sorted(i for i in skip if i is not None)),
        )
        .order_by(Record.id)
        .limit(1)
    ).first()
    if holder is not None:
        other, address = holder
        raise Conflict(
            f"{address} already belongs to {record.type}:{other}.",
            hint=f"Open {record.type}:{other}, or merge the two records.",
        )


def find_by_email(
    session: Session, *, company_id: int, address: str, record_type: str | None = None
) -> list[Record]:
    """The company's records holding `address` (of `record_type` only, if given), oldest first."""
    query = (
        select(Record)
        .join(RecordEmail, RecordEmail.record_id == Record.id)
        .where(RecordEmail.company_id == company_id, RecordEmail.address == address)
        .order_by(Record.id)
    )
    if record_type:
        query = query.where(Record.type == record_type)
    return list(session.scalars(query).unique())


def find_account_by_name(session: Session, *, company_id: int, name: str) -> Record | None:
    """The company's oldest account named exactly `name`, or None."""
    return session.scalar(
        select(Record)
        .where(Record.company_id == company_id, Record.type == "account", Record.name == name)
        .order_by(Record.id)
        .limit(1)
    )


def get_or_create_account(session: Session, *, company: Company, name: str) -> Record:
    """The account named `name`, created (and linked to stored mail) if there is none."""
    account = find_account_by_name(session, company_id=company.id, name=name.strip())
    if account is None:
        account = add_record(session, company=company, record_type="account", name=name)
    return account


def get_record(session: Session, *, company_id: int, ref: str) -> Record:
    """A record by `TYPE:ID` (or a plain ID), only within the caller's company."""
    kind, _, ident = ref.partition(":")
    if not ident:
        kind, ident = "", kind
    if not is_number(ident):
        raise BadInput(f"{ref!r} is not a record reference.", hint="Use TYPE:ID, e.g. contact:12.")
    record = session.get(Record, int(ident))
    if record is None or record.company_id != company_id or (kind and record.type != kind):
        raise NotFound(f"No record {ref}.")
    return record


def list_records(
    session: Session, *, company_id: int, record_type: str | None = None
) -> list[Record]:
    """The company's records (of `record_type` only, if given), by id."""
    query = select(Record).where(Record.company_id == company_id).order_by(Record.id)
    if record_type:
        query = query.where(Record.type == check_type(record_type))
    return list(session.scalars(query))


def record_summary(record: Record) -> dict[str, Any]:
    """The JSON shape `records list --json` prints."""
    return {
        "id": record.id,
        "type": record.type,
        "name": record.name,
        "emails": [e.address for e in record.emails],
        "email_fields": [{"field": e.field, "address": e.address} for e in record.emails],
        "domains": [d.domain for d in record.domains],
        "account": record.account_id,
        "owner": (
            {"id": record.owner.id, "email": record.owner.email, "name": record.owner.name}
            if record.owner is not None
            else None
        ),
        "fields": record.fields,
    }
