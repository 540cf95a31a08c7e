"""`mailroom mailbox …`: connect, edit, enable/disable, list, test mailboxes; the error log;
discover an address's servers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import typer

from mailroom.cli.common import STATE, console, get_app, print_json, read_secret_stdin
from mailroom.crm.companies import get_company, get_user
from mailroom.errors import BadInput, NotFound

mailbox_app = typer.Typer(help="Connected mailboxes.", no_args_is_help=True)


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{value!r} is not a date.", hint="Use the form 2025-01-31.") from None


@mailbox_app.command("add")
def mailbox_add(
    user: str = typer.Option(..., "--user", help="The owner's email address."),
    host: str = typer.Option(None, "--host", help="Required unless --oauth (its preset)."),
    port: int = typer.Option(None, "--port", help="Required unless --oauth (its preset)."),
    protocol: str = typer.Option("imap", "--protocol", help="imap|pop3"),
    security: str = typer.Option("ssl", "--security", help="ssl|starttls|none"),
    username: str = typer.Option(None, "--username", help="Login name (default: the address)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    oauth: str = typer.Option(
        None, "--oauth", metavar="google|microsoft", help="Sign in with OAuth, no password."
    ),
    smtp_host: str = typer.Option(None, "--smtp-host", help="SMTP server (--oauth)."),
    smtp_port: int = typer.Option(None, "--smtp-port", help="SMTP port (--oauth)."),
    smtp_security: str = typer.Option(None, "--smtp-security", help="ssl|starttls (--oauth)."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="--oauth: only print the sign-in address."
    ),
    alias: list[str] = typer.Option([], "--alias", help="Another address of the owner."),
    folder: list[str] = typer.Option(
        [], "--folder", help="A folder to sync (default: INBOX+Sent)."
    ),
    allow_self_signed: bool = typer.Option(
        False, "--allow-self-signed", help="Accept a server certificate that is not trusted."
    ),
    since: str = typer.Option(
        None, "--since", metavar="DATE", help="Backfill mail from this day on (default: all)."
    ),
    delete_after_fetch: bool = typer.Option(
        False, "--delete-after-fetch", help="POP3 only: delete mail once it is stored."
    ),
) -> None:
    """Connect a mailbox (password on stdin, or --oauth sign-in); prints the new mailbox id."""
    from mailroom.services.host_policy import OPERATOR
    from mailroom.services.mailbox_setup import NewMailbox, connect_mailbox

    since_day = _parse_date(since)
    app = get_app()
    if oauth:
        from mailroom.cli.oauth_flow import sign_in
        from mailroom.services.oauth_signin import oauth_servers

        servers = oauth_servers(
            oauth,
            protocol=protocol,
            host=host,
            port=port,
            security=security if host else None,
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            smtp_security=smtp_security,
        )
        grant = sign_in(app, provider=oauth, login_hint=user, open_browser=not no_browser)
        new = NewMailbox(password="", oauth=grant, **servers)  # type: ignore[arg-type]
    else:
        if host is None or port is None:
            raise typer.BadParameter("give --host and --port (or --oauth google|microsoft)")
        if not password_stdin:
            raise typer.BadParameter("pass the password on standard input with --password-stdin")
        new = NewMailbox(
            host=host,
            port=port,
            password=read_secret_stdin("Mailbox password"),
            protocol=protocol,
            security=security,
        )
    new = replace(
        new,
        username=username,
        allow_self_signed=allow_self_signed,
        folders=folder,
        aliases=alias,
        since=since_day,
        delete_after_fetch=delete_after_fetch,
        approve_aliases=True,  # the operator runs the CLI
    )
    with app.sessions() as session:
        owner = get_user(session, user)
        mailbox_id = connect_mailbox(
            session=session, app=app, user=owner, new=new, network=OPERATOR
        )
    print(mailbox_id)


@mailbox_app.command("reconnect")
def mailbox_reconnect(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the address."),
) -> None:
    """Sign in to an OAuth mailbox again (a revoked or expired grant); re-enables it."""
    from mailroom.cli.oauth_flow import sign_in
    from mailroom.services.oauth_signin import address_of, provider_of, reconnect_mailbox

    app = get_app()
    provider = provider_of(app, mailbox_id)
    grant = sign_in(
        app,
        provider=provider,
        login_hint=address_of(app, mailbox_id),
        open_browser=not no_browser,
    )
    with app.sessions() as session:
        reconnect_mailbox(session=session, app=app, mailbox_id=mailbox_id, sign_in=grant)
    print(mailbox_id)


@mailbox_app.command("edit")
def mailbox_edit(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from standard input."
    ),
    host: str = typer.Option(None, "--host"),
    port: int = typer.Option(None, "--port"),
    security: str = typer.Option(None, "--security", help="ssl|starttls|none"),
    username: str = typer.Option(None, "--username"),
    feeds: str = typer.Option(
        None,
        "--feeds",
        help="Record types its mail may link to: all, or some of "
        "lead,contact,account,case,opportunity.",
    ),
) -> None:
    """Change credentials, server settings or what the mailbox feeds; a login change
    re-enables a failed mailbox and syncs it."""
    password = read_secret_stdin("Mailbox password") if password_stdin else None
    from mailroom.services.host_policy import OPERATOR
    from mailroom.services.mailbox_setup import IncomingChange, edit_incoming

    change = IncomingChange(
        password=password, host=host, port=port, security=security, username=username
    )
    app = get_app()
    if feeds is not None:
        from mailroom.services.mailbox_feeds import change_mailbox_feeds

        with app.sessions() as session:
            fed = change_mailbox_feeds(
                session=session, mailbox_id=mailbox_id, feeds=feeds, viewer=None
            )
        console.print(f"Mailbox {mailbox_id} feeds: {', '.join(fed)}.")
        if change == IncomingChange():
            return
    with app.sessions() as session:
        edit_incoming(
            session=session, app=app, mailbox_id=mailbox_id, change=change, network=OPERATOR
        )
    console.print(f"Mailbox {mailbox_id} updated and re-enabled; it syncs at the next chance.")


@mailbox_app.command("disable")
def mailbox_disable(mailbox_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Stop syncing a mailbox (frees its slot under the company's limit)."""
    from mailroom.services.mailboxes import enable_mailbox

    with get_app().sessions() as session:
        enable_mailbox(session=session, mailbox_id=mailbox_id, enabled=False)
    console.print(f"Mailbox {mailbox_id} disabled.")


@mailbox_app.command("enable")
def mailbox_enable(mailbox_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Sync a disabled or failed mailbox again."""
    from mailroom.services.mailboxes import enable_mailbox

    with get_app().sessions() as session:
        enable_mailbox(session=session, mailbox_id=mailbox_id, enabled=True)
    console.print(f"Mailbox {mailbox_id} enabled.")


@mailbox_app.command("list")
def mailbox_list(
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List mailboxes with their status, progress and the fix for their last error."""
    from mailroom.services.mailboxes import list_mailbox_json

    with get_app().sessions() as session:
        owner = get_company(session, company) if company else None
        rows = list_mailbox_json(session=session, company=owner)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        progress = row["progress"]
        done = f"  {progress['done']}/{progress['total']} messages" if progress["total"] else ""
        error = f"  ({row['last_error']})" if row["last_error"] else ""
        console.print(
            f"{row['id']}\t{row['address']}\t{row['protocol']}://{row['host']}:{row['port']}"
            f"\t{row['status']}{done}{error}"
        )
        if row["hint"]:
            console.print(f"\tFix: {row['hint']}")


@mailbox_app.command("approve-alias")
def mailbox_approve_alias(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    address: str = typer.Argument(..., help="The pending alias."),
) -> None:
    """Approve a pending alias: only then does it count as the owner's address."""
    from mailroom.services.aliases import approve_alias

    with get_app().sessions() as session:
        approve_alias(session=session, mailbox_id=mailbox_id, address=address)
    console.print(f"Alias {address} of mailbox {mailbox_id} approved.")


@mailbox_app.command("reject-alias")
def mailbox_reject_alias(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    address: str = typer.Argument(..., help="The alias to remove."),
) -> None:
    """Reject an alias: it is removed from the mailbox (its confirmation link stops working)."""
    from mailroom.services.aliases import reject_alias

    with get_app().sessions() as session:
        reject_alias(session=session, mailbox_id=mailbox_id, address=address)
    console.print(f"Alias {address} of mailbox {mailbox_id} rejected and removed.")


@mailbox_app.command("errors")
def mailbox_errors(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(50, "--limit", help="How many entries, newest first."),
) -> None:
    """The mailbox's error log (time, kind, message, how to fix it) and its messages not
    fetched (quarantined, retrying, dismissed)."""
    from mailroom.services.mailboxes import error_log, get_mailbox_json
    from mailroom.services.quarantine import list_quarantine

    with get_app().sessions() as session:
        entries = error_log(session=session, mailbox_id=mailbox_id, limit=limit)
        status = get_mailbox_json(session=session, mailbox_id=mailbox_id)["status"]
        held = list_quarantine(session=session, mailbox_id=mailbox_id)
    if as_json:
        print_json(
            {"mailbox_id": mailbox_id, "status": status, "errors": entries, "quarantine": held}
        )
        return
    console.print(f"Mailbox {mailbox_id}: {status}, {len(entries)} logged errors (newest first)")
    for entry in entries:
        console.print(f"{entry['at']}  {entry['kind']}: {entry['message']}")
        if entry["hint"]:
            console.print(f"    Fix: {entry['hint']}")
    if held:
        _print_quarantine(mailbox_id, held)


def _print_quarantine(mailbox_id: int, rows: list[dict[str, Any]]) -> None:
    console.print(f"{len(rows)} messages the server lists but Mailroom could not fetch:")
    for row in rows:
        which = f"UIDL {row['uidl']}" if row["uidl"] else f"UID {row['uid']}"
        console.print(
            f"  [{row['id']}] {row['folder']} {which}  {row['state']} after "
            f"{row['attempts']} attempts ({row['last_error_at'][:19]}): {row['last_error']}",
            markup=False,
        )
    console.print(
        f"    Retry or dismiss: mailroom mailbox quarantine {mailbox_id} --retry QID "
        "(or --dismiss QID)"
    )


@mailbox_app.command("quarantine")
def mailbox_quarantine(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
    retry: int = typer.Option(None, "--retry", metavar="QID", help="Fetch it again."),
    dismiss: int = typer.Option(None, "--dismiss", metavar="QID", help="Accept the loss."),
) -> None:
    """Messages the server lists but Mailroom could not fetch; --retry or --dismiss one."""
    from mailroom.services.quarantine import dismiss_message, list_quarantine, retry_message

    if retry is not None and dismiss is not None:
        raise BadInput("Give --retry or --dismiss, not both.")
    with get_app().sessions() as session:
        if retry is not None or dismiss is not None:
            act = retry_message if retry is not None else dismiss_message
            qid = retry if retry is not None else dismiss
            row = act(session=session, mailbox_id=mailbox_id, quarantine_id=qid)
            if as_json:
                print_json(row)
            else:
                console.print(f"Message {qid} of mailbox {mailbox_id}: {row['state_words']}.")
            return
        rows = list_quarantine(session=session, mailbox_id=mailbox_id)
    if as_json:
        print_json({"mailbox_id": mailbox_id, "quarantine": rows})
        return
    if not rows:
        console.print(f"Mailbox {mailbox_id}: every message the server lists was fetched.")
        return
    _print_quarantine(mailbox_id, rows)


@mailbox_app.command("test")
def mailbox_test(mailbox_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Log in to the mailbox (folders, or the POP3 message count) and, when the mailbox
    has SMTP settings, to its SMTP server; sends nothing and changes nothing."""
    from mailroom.services.host_policy import OPERATOR
    from mailroom.services.mailbox_checks import test_mailbox

    app = get_app()
    with app.sessions() as session:
        found = test_mailbox(session=session, app=app, mailbox_id=mailbox_id, network=OPERATOR)
    console.print(f"Logged in to {found.host}:{found.port} as {found.username}.")
    if found.probe.messages is not None:
        console.print(f"  {found.probe.messages} messages in the POP3 maildrop")
    else:
        for info in found.probe.folders:
            console.print(f"  {info.name}\t{info.role.value}")
    if found.smtp_line is not None:
        console.print(found.smtp_line)


@mailbox_app.command("discover")
def mailbox_discover(
    email: str = typer.Argument(..., metavar="EMAIL", help="The mailbox's address."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Find an address's IMAP, POP3 and SMTP servers (built-in presets, the domain's
    autoconfig, DNS SRV records, its MX host), and say which source gave them; exit 1
    when none did (enter them by hand)."""
    from mailroom.config import load_settings
    from mailroom.services.discovery import discover, options_from
    from mailroom.services.host_policy import OPERATOR

    options = options_from(load_settings(STATE.data_dir))
    found = discover(email=email, network=OPERATOR, options=options)
    if as_json:
        print_json(found)
    elif found["found"]:
        _print_discovered(found)
    if not found["found"]:
        raise NotFound(
            f"No mail server settings found for {found['email']} (built-in presets, "
            f"autoconfig, DNS SRV and MX records of {found['domain']} were tried).",
            hint=found["hint"],
        )


def _print_discovered(found: dict[str, Any]) -> None:
    label = f" ({found['label']})" if found["label"] else ""
    console.print(f"Found by {found['source']}: {found['detail']}{label}")
    for kind in ("imap", "pop3", "smtp"):
        server = found[kind]
        if server is not None:
            console.print(
                f"  {kind.upper():5} {server['host']}:{server['port']} {server['security']}"
            )
    console.print(f"  login {found['username']}")
    if found["oauth"]:
        console.print(
            f"Sign in with {found['oauth'].capitalize()} (no password): "
            f"mailroom mailbox add --user … --oauth {found['oauth']}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(mailbox_app, name="mailbox")
