"""`mailroom init`, `mailroom company …` and `mailroom user …`."""

from __future__ import annotations

from typing import Any

import typer

from mailroom.cli.common import console, get_app, print_rows, read_secret_stdin
from mailroom.crm.companies import add_company, add_user, get_company, list_companies
from mailroom.db.engine import transaction
from mailroom.security.secrets import create_key_file

company_app = typer.Typer(
    help="Companies (tenants) and their internal domains.", no_args_is_help=True
)
user_app = typer.Typer(help="People who sign in and own mailboxes.", no_args_is_help=True)


def init() -> None:
    """Create the data dir, the database schema and the credential key (mode 0600)."""
    app = get_app()
    settings = app.settings
    if settings.secret_key_b64:
        console.print("Using the secret key from MAILROOM_SECRET_KEY.")
    elif create_key_file(settings.key_path):
        console.print(f"Created the secret key {settings.key_path} (mode 0600). Back it up.")
    else:
        console.print(f"Kept the existing secret key {settings.key_path}.")
    _ = app.secrets  # fail now, not at the first mailbox, if the key is unusable
    console.print(f"Database ready: {app.engine.url.render_as_string(hide_password=True)}")


@company_app.command("add")
def company_add(
    name: str = typer.Argument(..., help="The company's name."),
    domain: list[str] = typer.Option([], "--domain", help="An internal domain (repeatable)."),
) -> None:
    """Create a company with its internal domains."""
    with transaction(get_app().sessions) as session:
        company = add_company(session, name=name, domains=domain)
        console.print(f"Company {company.name!r} created (id {company.id}).")


@company_app.command("list")
def company_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the companies."""
    with get_app().sessions() as session:
        rows: list[dict[str, Any]] = [
            {"id": c.id, "name": c.name, "domains": [d.domain for d in c.domains]}
            for c in list_companies(session)
        ]
    print_rows(
        rows, as_json=as_json, line=lambda r: f"{r['id']}\t{r['name']}\t{', '.join(r['domains'])}"
    )


@company_app.command("limit")
def company_limit(
    name: str = typer.Argument(..., help="The company's name."),
    limit: str = typer.Argument(..., metavar="N|none", help="Most mailboxes, or `none`."),
) -> None:
    """Set (N) or clear (none) how many mailboxes the company may connect."""
    from mailroom.digits import is_number
    from mailroom.errors import BadInput
    from mailroom.services.mailbox_setup import set_mailbox_limit

    if limit.strip().lower() == "none":
        wanted = None
    elif is_number(limit.strip()):
        wanted = int(limit.strip())
    else:
        raise BadInput(f"{limit!r} is not a mailbox limit.", hint="Give a whole number or none.")
    with transaction(get_app().sessions) as session:
        owner = get_company(session, name)
        set_mailbox_limit(session=session, company_id=owner.id, limit=wanted)
        shown = owner.name
    if wanted is None:
        console.print(f"Company {shown!r}: no mailbox limit.")
    else:
        console.print(f"Company {shown!r}: at most {wanted} mailboxes.")


@company_app.command("notices")
def company_notices(
    name: str = typer.Argument(..., help="The company's name."),
    mailbox: str = typer.Argument(..., metavar="MAILBOX_ID|none", help="A mailbox id, or `none`."),
) -> None:
    """Choose the mailbox Mailroom sends the company's notices from (reconnect and task
    reminders, alias confirmations), or `none` to show them on the dashboard only."""
    from mailroom.digits import is_number
    from mailroom.errors import BadInput
    from mailroom.services.notices import set_notice_mailbox

    if mailbox.strip().lower() == "none":
        wanted = None
    elif is_number(mailbox.strip()):
        wanted = int(mailbox.strip())
    else:
        raise BadInput(
            f"{mailbox!r} is not a mailbox id.",
            hint="Give an id from `mailroom mailbox list`, or none.",
        )
    with transaction(get_app().sessions) as session:
        owner = get_company(session, name)
        set_notice_mailbox(session=session, company_id=owner.id, mailbox_id=wanted)
        shown = owner.name
    if wanted is None:
        console.print(f"Company {shown!r}: notices on the dashboard only.")
    else:
        console.print(f"Company {shown!r}: notices are sent from mailbox {wanted}.")


@user_app.command("add")
def user_add(
    email: str = typer.Argument(..., help="The user's email address (their sign-in name)."),
    company: str = typer.Option(..., "--company", help="The company's name."),
    name: str = typer.Option("", "--name", help="Display name."),
    admin: bool = typer.Option(False, "--admin", help="Give the admin role."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a sign-in password from standard input."
    ),
    confirm_domain: bool = typer.Option(
        False,
        "--confirm-domain",
        help="Accept an address outside the company's domains (they stay as they are).",
    ),
) -> None:
    """Add a user to a company (in its own domains, unless --confirm-domain)."""
    password = read_secret_stdin("Password") if password_stdin else None
    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        user = add_user(
            session,
            company=owner,
            email=email,
            name=name,
            admin=admin,
            password=password,
            confirm_domain=confirm_domain,
        )
        console.print(f"User {user.email} added to {owner.name} as {user.role} (id {user.id}).")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(company_app, name="company")
    app.add_typer(user_app, name="user")
