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
    add_record,
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
) -> None:
    """Create one record; the mail already stored for its addresses is linked at once."""
    fields = [
        EmailField(
            field="main" if i == 0 else "secondary" if i == 1 else f"email_{i + 1}", address=address
        )
        for i, address in enumerate(email)
    ]
    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        parent = get_or_create_account(session, company=owner, name=account) if account else None
        record = add_record(
            session,
            company=owner,
            record_type=record_type,
            name=name,
            emails=fields,
            domains=domain,
            account=parent,
        )
        console.print(f"{record.ref}")


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


def register(app: typer.Typer) -> None:
    app.add_typer(records_app, name="records")
    app.command("timeline")(timeline)
