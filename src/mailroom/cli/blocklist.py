"""`mailroom blocklist add|list|remove`: addresses and @domains whose mail is not logged.

The forms are fixed by issue 5 (acceptance checks use them):
`blocklist add ENTRY --company NAME [--user EMAIL]`, `blocklist list --company NAME
[--json]`, `blocklist remove ENTRY --company NAME`.
"""

from __future__ import annotations

import typer

from mailroom.cli.common import console, get_app, print_json
from mailroom.crm.companies import get_company
from mailroom.db.engine import transaction
from mailroom.matching.blocklist import add_entry, list_entries, remove_entry

blocklist_app = typer.Typer(
    help="Addresses and @domains whose mail is never logged.", no_args_is_help=True
)


@blocklist_app.command("add")
def blocklist_add(
    entry: str = typer.Argument(..., help="An address (jo@example.com) or @domain."),
    company: str = typer.Option(..., "--company"),
    user: str = typer.Option(None, "--user", help="Only for this user's mailboxes."),
) -> None:
    """Block an address or a domain (subdomains included)."""
    from mailroom.services.filtered_mail import blocked_logged

    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        row = add_entry(session, company=owner, entry=entry, user_email=user)
        value = row.entry
        logged = blocked_logged(session, entry=value, company_id=owner.id, user_email=user)
    console.print(f"Blocked {value}" + (f" for {user}" if user else "") + ".")
    if logged:
        console.print(
            f"{logged} message(s) already logged have {value}; to take them off the "
            f"timelines: mailroom blocklist remove-logged {value} --company {company!r}"
            + (f" --user {user}" if user else ""),
            markup=False,
        )


@blocklist_app.command("remove-logged")
def blocklist_remove_logged(
    entry: str = typer.Argument(..., help="A blocked address or @domain."),
    company: str = typer.Option(..., "--company"),
    user: str = typer.Option(None, "--user", help="The entry of this user's mailboxes."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count them."),
) -> None:
    """Take the mail a blocked entry already logged off the timelines (hand-made links stay;
    the messages stay stored, skipped as blocklist)."""
    from mailroom.services.filtered_mail import blocked_logged, remove_blocked_logged

    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        if dry_run:
            count = blocked_logged(session, entry=entry, company_id=owner.id, user_email=user)
            session.rollback()
        else:
            count = remove_blocked_logged(
                session, entry=entry, company_id=owner.id, user_email=user
            )
    verb = "would be taken" if dry_run else "taken"
    console.print(f"{count} logged message(s) with {entry} {verb} off the timelines.")


@blocklist_app.command("list")
def blocklist_list(
    company: str = typer.Option(..., "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The entries in force; the company's own domains are built in."""
    with get_app().sessions() as session:
        views = list_entries(session, company=get_company(session, company))
    if as_json:
        print_json([v.to_json() for v in views])
        return
    for view in views:
        scope = f"user {view.user}" if view.user else "company"
        note = " (built in: the company's own domain)" if view.builtin else ""
        console.print(f"{view.entry}\t{scope}{note}")


@blocklist_app.command("remove")
def blocklist_remove(
    entry: str = typer.Argument(..., help="The address or @domain to unblock."),
    company: str = typer.Option(..., "--company"),
    user: str = typer.Option(None, "--user", help="Remove this user's entry."),
) -> None:
    """Unblock an address or a domain (mail synced from now on is logged again)."""
    with transaction(get_app().sessions) as session:
        remove_entry(session, company=get_company(session, company), entry=entry, user_email=user)
    console.print(f"Unblocked {entry.strip()}.")


def register(app: typer.Typer) -> None:
    app.add_typer(blocklist_app, name="blocklist")
