"""`mailroom records …` and `mailroom timeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.cli.common import console, err_console, get_app, print_json, print_rows
from mailroom.crm.companies import get_company
from mailroom.crm.records import (
    EmailField,
    find_by_email,
    get_or_create_account,
    get_record,
    list_records,
    record_summary,
)
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Record, RecordEmail
from mailroom.digits import is_number
from mailroom.errors import BadInput, NotFound
from mailroom.mail.addresses import normalise

records_app = typer.Typer(
    help="CRM records: leads, contacts, accounts, cases, opportunities.", no_args_is_help=True
)


@records_app.command("import")
def records_import(
    file: Path = typer.Argument(..., help="A CSV file whose first line names the columns."),
    company: str = typer.Option(..., "--company"),
    record_type: str = typer.Option(..., "--type", help="lead|contact|account|case|opportunity"),
) -> None:
    """Import records from CSV; re-importing updates them (key: the main email address)."""
    from mailroom.crm.csv_import import import_csv

    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        report = import_csv(session, company=owner, path=file, record_type=record_type)
    console.print(
        f"Imported {file.name}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.errors)} rejected."
    )
    for line, reason in report.errors:
        err_console.print(f"{file.name}: line {line}: {reason}", highlight=False)
    if report.errors:
        err_console.print("Fix those rows and import the file again; the other rows are in.")
        raise typer.Exit(1)


@records_app.command("add")
def records_add(
    company: str = typer.Option(..., "--company"),
    record_type: str = typer.Option(..., "--type", help="lead|contact|account|case|opportunity"),
    name: str = typer.Option(..., "--name"),
    email: list[str] = typer.Option([], "--email", help="An address (repeatable; first is main)."),
    domain: list[str] = typer.Option([], "--domain", help="An account's domain (repeatable)."),
    account: str = typer.Option(None, "--account", help="The account's name (created if new)."),
    owner: str = typer.Option(None, "--owner", help="The owner's email (a user of the company)."),
) -> None:
    """Create one record; the mail already stored for its addresses is linked at once."""
    from mailroom.services.records import create_record

    fields = [
        EmailField(
            field="main" if i == 0 else "secondary" if i == 1 else f"email_{i + 1}", address=address
        )
        for i, address in enumerate(email)
    ]
    with transaction(get_app().sessions) as session:
        holder = get_company(session, company)
        parent = get_or_create_account(session, company=holder, name=account) if account else None
        change = create_record(
            session,
            viewer=None,
            company_id=holder.id,
            record_type=record_type,
            name=name,
            emails=fields,
            domains=domain,
            account_id=parent.id if parent else None,
            owner=owner,
        )
        console.print(f"{change.record.ref}")


@records_app.command("list")
def records_list(
    company: str = typer.Option(..., "--company"),
    record_type: str = typer.Option(None, "--type"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List a company's records."""
    with get_app().sessions() as session:
        owner = get_company(session, company)
        rows = [
            record_summary(r)
            for r in list_records(session, company_id=owner.id, record_type=record_type)
        ]
    print_rows(rows, as_json=as_json, line=_record_line)


def _record_line(row: dict[str, Any]) -> str:
    return f"{row['type']}:{row['id']}\t{row['name']}\t{', '.join(row['emails'])}"


def resolve_records(session: Session, spec: str, company: str | None) -> list[Record]:
    """RECORD as TYPE:ID (or ID) or as an email address (every record holding it)."""
    company_id = get_company(session, company).id if company else None
    if "@" not in spec:
        if company_id is None:
            company_id = company_of_record(session, spec)
        return [get_record(session, company_id=company_id, ref=spec)]
    address = normalise(spec)
    if address is None:
        raise BadInput(f"{spec!r} is not an email address.")
    if company_id is None:
        owners = set(
            session.scalars(select(RecordEmail.company_id).where(RecordEmail.address == address))
        )
        if len(owners) > 1:
            raise BadInput(
                f"{address} is on records of several companies.", hint="Name one with --company."
            )
        if not owners:
            raise NotFound(f"No record has the address {address}.")
        company_id = owners.pop()
    found = find_by_email(session, company_id=company_id, address=address)
    if not found:
        raise NotFound(f"No record has the address {address}.")
    return found


def company_of_record(session: Session, ref: str) -> int:
    ident = ref.rpartition(":")[2]
    record = session.get(Record, int(ident)) if is_number(ident) else None
    if record is None:
        raise NotFound(f"No record {ref}.", hint="Use TYPE:ID as `records list` shows it.")
    return record.company_id


def timeline(
    record: str = typer.Argument(..., help="TYPE:ID, or an email address"),
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(None, "--limit", help="Show at most this many messages."),
) -> None:
    """A record's email timeline, newest first."""
    with get_app().sessions() as session:
        records = resolve_records(session, record, company)
        entries = timeline_entries(session, records=records, limit=limit)
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    if not entries:
        console.print("No email on this timeline yet.")
    for e in entries:
        arrow = {"inbound": "←", "outbound": "→"}.get(e.direction, "·")
        who = e.from_ if e.direction != "outbound" else ", ".join(e.to[:3])
        console.print(f"{(e.date or '')[:16]:16}  {arrow} {who or '?':32.32}  {e.subject}")


def one_record(session: Session, spec: str, company: str | None) -> Record:
    """RECORD (TYPE:ID, or an address held by exactly one record) as one record."""
    found = resolve_records(session, spec, company)
    if len(found) > 1:
        refs = ", ".join(r.ref for r in found)
        raise BadInput(f"{spec} is on several records: {refs}.", hint="Name one as TYPE:ID.")
    return found[0]


def _field_pairs(pairs: list[str]) -> dict[str, Any] | None:
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{pair!r} is not KEY=VALUE.", hint="E.g. --field stage=won.")
        fields[key.strip()] = value if value != "" else None
    return fields or None


def _mail_line(change: Any) -> str:
    parts = [f"{change.linked} message(s) linked"]
    if change.unlinked:
        parts.append(f"{change.unlinked} unlinked")
    return ", ".join(parts)


@records_app.command("edit")
def records_edit(
    record: str = typer.Argument(..., help="TYPE:ID, or an address on one record."),
    name: str = typer.Option(None, "--name", help="The new name."),
    add_email: list[str] = typer.Option([], "--add-email", help="An address to add (repeatable)."),
    remove_email: list[str] = typer.Option(
        [], "--remove-email", help="An address to remove (repeatable); its links go with it."
    ),
    add_domain: list[str] = typer.Option([], "--add-domain", help="An account domain to add."),
    remove_domain: list[str] = typer.Option([], "--remove-domain", help="A domain to remove."),
    owner: str = typer.Option(None, "--owner", help="The owner's email ('' for nobody)."),
    account: str = typer.Option(None, "--account", help="The account, as account:ID."),
    field: list[str] = typer.Option([], "--field", help="KEY=VALUE (stage=won; KEY= removes)."),
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change a record; added addresses link their stored mail, removed ones unlink it."""
    from mailroom.services.records import UNSET, RecordEdit, edit_record, find_record

    with transaction(get_app().sessions) as session:
        target = one_record(session, record, company)
        parent = (
            find_record(session, viewer=None, ref=account, company_id=target.company_id)
            if account
            else None
        )
        edit = RecordEdit(
            name=name,
            add_emails=[EmailField("secondary", a) for a in add_email],
            remove_emails=remove_email,
            add_domains=add_domain,
            remove_domains=remove_domain,
            owner=UNSET if owner is None else (owner or None),
            account_id=UNSET if parent is None else parent.id,
            fields=_field_pairs(field),
        )
        change = edit_record(session, viewer=None, record=target, edit=edit)
        summary = record_summary(change.record)
    if as_json:
        print_json({**summary, "mail": {"linked": change.linked, "unlinked": change.unlinked}})
        return
    console.print(f"{summary['type']}:{summary['id']} updated: {_mail_line(change)}.")


@records_app.command("remove")
def records_remove(
    record: str = typer.Argument(..., help="TYPE:ID, or an address on one record."),
    company: str = typer.Option(None, "--company"),
) -> None:
    """Delete a record; its mail is kept (linked to nothing through it)."""
    from mailroom.services.records import delete_record

    with transaction(get_app().sessions) as session:
        target = one_record(session, record, company)
        ref = target.ref
        unlinked = delete_record(session, viewer=None, record=target)
    console.print(f"{ref} removed; its {unlinked} message(s) are kept.")


@records_app.command("merge")
def records_merge(
    record: str = typer.Argument(..., help="The record that stays (TYPE:ID or an address)."),
    from_: str = typer.Option(..., "--from", help="The record merged into it, then removed."),
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Merge a record into another: addresses, domains, links and all attached move."""
    from mailroom.services.records import merge_records

    with transaction(get_app().sessions) as session:
        survivor = one_record(session, record, company)
        source = one_record(session, from_, company)
        gone = source.ref
        merged = merge_records(session, viewer=None, survivor=survivor, source=source)
        summary = record_summary(merged)
    if as_json:
        print_json(summary)
        return
    console.print(f"{gone} merged into {summary['type']}:{summary['id']}.")


@records_app.command("from-email")
def records_from_email(
    message: str = typer.Argument(..., help="The message's Message-ID."),
    record_type: str = typer.Option("lead", "--type", help="lead|contact|case"),
    use: str = typer.Option("from", "--use", help="from, or reply-to for web-form mail."),
    company: str = typer.Option(None, "--company"),
) -> None:
    """Make a lead, contact or case from an email, linked to it."""
    from mailroom.services.messages import find_message
    from mailroom.services.records import create_from_message

    with transaction(get_app().sessions) as session:
        owner = get_company(session, company) if company else None
        found, _level = find_message(session=session, ref=message, company=owner)
        change = create_from_message(
            session, viewer=None, message_id=found.id, record_type=record_type, use=use
        )
        ref = change.record.ref
    console.print(f"{ref}")


def register(app: typer.Typer) -> None:
    app.add_typer(records_app, name="records")
    app.command("timeline")(timeline)
