"""`mailroom privacy …`, `mailroom retention …` and `mailroom mailbox disconnect`.

The same service functions as the dashboard's admin settings (crm.retention).
"""

from __future__ import annotations

import typer

from mailroom.cli.common import console, get_app, print_json
from mailroom.cli.mailbox import mailbox_app
from mailroom.crm.access import privacy_of
from mailroom.crm.companies import get_company
from mailroom.crm.retention import purge_all, purge_unlinked, set_privacy
from mailroom.db.engine import transaction

privacy_app = typer.Typer(help="Who sees which email: transparent or strict.", no_args_is_help=True)
retention_app = typer.Typer(
    help="How long email linked to no record is kept.", no_args_is_help=True
)


@privacy_app.command("set")
def privacy_set(
    company: str = typer.Option(..., "--company"),
    visibility: str = typer.Option(..., "--visibility", help="transparent|strict"),
) -> None:
    """Set the company's visibility mode."""
    with transaction(get_app().sessions) as session:
        row = set_privacy(
            session, company_id=get_company(session, company).id, visibility=visibility
        )
        console.print(f"Visibility of {company}: {row.visibility}.")


@privacy_app.command("show")
def privacy_show(
    company: str = typer.Option(..., "--company"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Show the company's privacy and retention settings."""
    with get_app().sessions() as session:
        row = privacy_of(session, get_company(session, company).id)
        data = {
            "visibility": row.visibility,
            "retention_days": row.retention_days,
            "retention_enabled": row.retention_enabled,
        }
    if as_json:
        print_json(data)
        return
    state = "on" if data["retention_enabled"] else "off"
    console.print(
        f"visibility {data['visibility']}; retention {state}, {data['retention_days']} days"
    )


@retention_app.command("set")
def retention_set(
    company: str = typer.Option(..., "--company"),
    days: int = typer.Option(None, "--days", help="Delete unlinked mail after DAYS days."),
    off: bool = typer.Option(False, "--off", help="Keep unlinked mail forever."),
    on: bool = typer.Option(False, "--on", help="Turn deletion back on."),
) -> None:
    """Set how long email linked to no record is kept (default 7 days)."""
    enabled = False if off else True if on or days is not None else None
    with transaction(get_app().sessions) as session:
        row = set_privacy(
            session,
            company_id=get_company(session, company).id,
            retention_days=days,
            retention_enabled=enabled,
        )
        state = f"after {row.retention_days} days" if row.retention_enabled else "never"
        console.print(f"Unlinked mail of {company} is deleted {state}.")


@retention_app.command("run")
def retention_run(company: str = typer.Option(None, "--company")) -> None:
    """Delete unlinked mail past its retention now (the server also does it hourly)."""
    app = get_app()
    if company:
        with transaction(app.sessions) as session:
            count = purge_unlinked(session, company_id=get_company(session, company).id)
        console.print(f"Deleted {count} unlinked messages.")
        return
    done = purge_all(app)
    console.print(f"Deleted {sum(done.values())} unlinked messages.")


def mailbox_disconnect(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    keep_mail: bool = typer.Option(False, "--keep-mail", help="Keep everything it synced."),
    remove_mail: bool = typer.Option(
        False, "--remove-mail", help="Remove the mail only this mailbox brought."
    ),
) -> None:
    """Disconnect a mailbox, keeping or removing the mail only it brought."""
    if keep_mail == remove_mail:
        raise typer.BadParameter("choose exactly one of --keep-mail and --remove-mail")
    from mailroom.services.mailboxes import disconnect

    with get_app().sessions() as session:
        removed = disconnect(session=session, mailbox_id=mailbox_id, remove_mail=remove_mail)
    console.print(f"Mailbox {mailbox_id} disconnected; {removed} messages removed.")


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
    app.add_typer(retention_app, name="retention")
    mailbox_app.command("disconnect")(mailbox_disconnect)
