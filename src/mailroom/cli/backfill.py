"""`mailroom records backfill RECORD`: search the mail servers for a record's older mail."""

from __future__ import annotations

import typer

from mailroom.cli.common import console, err_console, get_app, print_json


def records_backfill(
    record: str = typer.Argument(..., help="TYPE:ID of the record, e.g. contact:12"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Search the company's mailboxes (UID SEARCH FROM/TO/CC) and fetch what is missing."""
    from mailroom.cli.records import company_of_record
    from mailroom.sync.retro import backfill_record

    app = get_app()
    with app.sessions() as session:
        company_id = company_of_record(session, record)
    report = backfill_record(app, company_id=company_id, ref=record)
    if as_json:
        print_json(
            {
                "record": report.record,
                "addresses": report.addresses,
                "mailboxes": report.mailboxes,
                "found": report.found,
                "fetched": report.fetched,
                "messages": report.messages,
                "links": report.links,
                "errors": report.errors,
            }
        )
    else:
        console.print(
            f"{report.record}: searched {report.mailboxes} mailboxes for "
            f"{', '.join(report.addresses) or 'no external address'}: {report.found} found on "
            f"the servers, {report.fetched} fetched, {report.messages} new messages, "
            f"{report.links} new links."
        )
        for error in report.errors:
            err_console.print(f"[red]{error}[/]")
    if report.errors:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Adds `backfill` to the `records` group (which cli/records.py owns)."""
    from mailroom.cli.records import records_app

    records_app.command("backfill")(records_backfill)
