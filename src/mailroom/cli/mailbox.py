"""`mailroom mailbox …`: connect, list and test mailboxes."""

from __future__ import annotations

import typer

from mailroom.cli.common import console, get_app, print_json, read_secret_stdin
from mailroom.crm.companies import get_company, get_user
from mailroom.db.engine import transaction
from mailroom.sync.mailboxes import (
    add_mailbox,
    get_mailbox,
    list_mailboxes,
    mailbox_summary,
    open_source,
)

mailbox_app = typer.Typer(help="Connected mailboxes.", no_args_is_help=True)


@mailbox_app.command("add")
def mailbox_add(
    user: str = typer.Option(..., "--user", help="The owner's email address."),
    host: str = typer.Option(..., "--host"),
    port: int = typer.Option(..., "--port"),
    protocol: str = typer.Option("imap", "--protocol"),
    security: str = typer.Option("ssl", "--security", help="ssl|starttls|none"),
    username: str = typer.Option(None, "--username", help="Login name (default: the address)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (required)."
    ),
    alias: list[str] = typer.Option([], "--alias", help="Another address of the owner."),
    folder: list[str] = typer.Option(
        [], "--folder", help="A folder to sync (default: INBOX+Sent)."
    ),
    allow_self_signed: bool = typer.Option(
        False, "--allow-self-signed", help="Accept a server certificate that is not trusted."
    ),
) -> None:
    """Connect a mailbox; prints the new mailbox id."""
    if not password_stdin:
        raise typer.BadParameter("pass the password on standard input with --password-stdin")
    password = read_secret_stdin("Mailbox password")
    app = get_app()
    with transaction(app.sessions) as session:
        owner = get_user(session, user)
        mailbox = add_mailbox(
            session,
            app.secrets,
            user=owner,
            host=host,
            port=port,
            password=password,
            protocol=protocol,
            security=security,
            username=username,
            aliases=alias,
            folders=folder,
            allow_self_signed=allow_self_signed,
        )
        mailbox_id = mailbox.id
    print(mailbox_id)


@mailbox_app.command("list")
def mailbox_list(
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List mailboxes with their status."""
    with get_app().sessions() as session:
        owner = get_company(session, company) if company else None
        rows = [mailbox_summary(m) for m in list_mailboxes(session, company=owner)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        error = f"  ({row['last_error']})" if row["last_error"] else ""
        console.print(
            f"{row['id']}\t{row['address']}\t{row['host']}:{row['port']}\t{row['status']}{error}"
        )


@mailbox_app.command("test")
def mailbox_test(mailbox_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Connect, log in and list folders; changes nothing."""
    app = get_app()
    with app.sessions() as session:
        mailbox = get_mailbox(session, mailbox_id)
    source = open_source(mailbox, app.secrets)
    try:
        folders = source.list_folders()
    finally:
        source.close()
    console.print(f"Logged in to {mailbox.host}:{mailbox.port} as {mailbox.username}.")
    for info in folders:
        console.print(f"  {info.name}\t{info.role.value}")


def register(app: typer.Typer) -> None:
    app.add_typer(mailbox_app, name="mailbox")
