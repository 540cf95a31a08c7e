"""`mailroom send`, `mailroom outbox …`, `mailroom mailbox smtp` and `mailroom company dropbox`.

`send` queues (committed) and then attempts at once; it prints the Message-ID without
angle brackets and exits 0 only when the SMTP server accepted the message; 1 for bad input
or a provider limit (nothing queued); 2 when the server failed (the entry stays queued and
is retried by `mailroom serve` or `mailroom outbox flush` unless the failure is permanent).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import typer

from mailroom.cli.admin import company_app
from mailroom.cli.common import console, err_console, get_app, print_json, read_secret_stdin
from mailroom.cli.mailbox import mailbox_app
from mailroom.crm.companies import get_company
from mailroom.db.engine import transaction
from mailroom.dropbox.tokens import DOMAIN_HINT, domain_problem, drop_address, ensure_token
from mailroom.errors import BadInput, MailroomError
from mailroom.outbox.compose import FileAttachment
from mailroom.outbox.delivery import deliver, process_due
from mailroom.outbox.service import (
    SendRequest,
    entry_summary,
    list_outbox,
    mailbox_usage,
    queue_message,
    release,
)

outbox_app = typer.Typer(
    help="Messages sent from Mailroom, and sending limits.", no_args_is_help=True
)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(
            f"Cannot read the {what} {path}: {exc}", hint="Give a UTF-8 text file."
        ) from exc


def _attachment(path: Path) -> FileAttachment:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"Cannot read the attachment {path}: {exc.strerror}") from exc
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileAttachment(filename=path.name, content_type=ctype, data=data)


def send(
    mailbox: int = typer.Option(..., "--mailbox", help="The id of the mailbox to send from."),
    to: list[str] = typer.Option([], "--to", help="A recipient (repeatable)."),
    cc: list[str] = typer.Option([], "--cc", help="A copy recipient (repeatable)."),
    bcc: list[str] = typer.Option([], "--bcc", help="A blind-copy recipient (repeatable)."),
    subject: str = typer.Option(..., "--subject"),
    body: str = typer.Option(None, "--body", help="The text body."),
    body_file: Path = typer.Option(None, "--body-file", help="A UTF-8 file with the text body."),
    html_file: Path = typer.Option(None, "--html-file", help="A UTF-8 file with an HTML body."),
    attach: list[Path] = typer.Option([], "--attach", help="A file to attach (repeatable)."),
    reply_to_message: str = typer.Option(
        None, "--reply-to-message", help="The Message-ID of the logged message to answer."
    ),
    record: str = typer.Option(None, "--record", help="TYPE:ID of the record sent from."),
    forward: str = typer.Option(
        None,
        "--forward",
        help="The Message-ID of a logged message to forward (its text below, its files attached).",
    ),
    quote: bool = typer.Option(
        False, "--quote", help="With --reply-to-message: quote the original below the text."
    ),
    signature: bool = typer.Option(
        True, "--signature/--no-signature", help="Append the mailbox owner's signature."
    ),
) -> None:
    """Send a message through the mailbox's SMTP server; prints its Message-ID."""
    if (body is None) == (body_file is None):
        raise BadInput("Give the text body with exactly one of --body or --body-file.")
    if not to:
        raise BadInput("A message needs at least one --to recipient.")
    request = SendRequest(
        mailbox_id=mailbox,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject,
        text=body if body is not None else _read_text(body_file, "body file"),
        html=_read_text(html_file, "HTML file") if html_file else None,
        attachments=[_attachment(p) for p in attach],
        reply_to_message=reply_to_message,
        record=record,
    )
    from mailroom.services.compose import Compose, operator_request

    app = get_app()
    with transaction(app.sessions) as session:
        how = Compose(quote=quote, signature=signature)
        request = operator_request(session, app, request=request, forward=forward, how=how)
        entry_id = queue_message(session, request=request).id
    result = deliver(app, entry_id)
    if result.status == "sent":
        print(result.message_id)
        if result.copy_note:
            err_console.print(f"Note: {result.copy_note}", highlight=False)
        return
    if result.status == "queued":
        err_console.print(
            f"Queued as outbox entry {entry_id}; Mailroom will try again.", highlight=False
        )
    if result.error is not None:
        raise result.error
    raise MailroomError(f"Outbox entry {entry_id} is {result.status}.")


@outbox_app.command("list")
def outbox_list(
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(100, "--limit"),
) -> None:
    """The latest outbox entries, and each mailbox's count for the last 24 hours."""
    with get_app().sessions() as session:
        company_id = get_company(session, company).id if company else None
        entries = [
            entry_summary(e) for e in list_outbox(session, company_id=company_id, limit=limit)
        ]
        usage = mailbox_usage(session, company_id=company_id)
    if as_json:
        print_json({"entries": entries, "mailboxes": usage})
        return
    for row in usage:
        cap = row["messages_per_day"]
        console.print(
            f"Mailbox {row['mailbox_id']} ({row['address']}, {row['preset']}): "
            f"{row['messages_24h']} of {cap if cap is not None else 'unlimited'} messages "
            f"and {row['recipients_24h']} recipients in the last 24 hours"
        )
    for e in entries:
        why = f"  {e['error']}" if e["error"] else ""
        console.print(
            f"{e['id']}\t{e['status']}\t{e['message_id']}\t{', '.join(e['recipients'])}\t"
            f"{e['subject']}{why}",
            highlight=False,
        )


@outbox_app.command("flush")
def outbox_flush() -> None:
    """Attempt every due entry now (what `mailroom serve` does every minute)."""
    for result in process_due(get_app()):
        error = f": {result.error.message}" if result.error else ""
        console.print(f"{result.entry_id}\t{result.status}\t{result.message_id}{error}")


@outbox_app.command("retry")
def outbox_retry(entry_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Queue a held or failed entry again and attempt it now."""
    app = get_app()
    with transaction(app.sessions) as session:
        release(session, entry_id=entry_id)
    result = deliver(app, entry_id)
    console.print(f"{result.entry_id}\t{result.status}\t{result.message_id}")
    if result.error is not None:
        raise result.error


def mailbox_smtp(
    mailbox_id: int = typer.Argument(..., metavar="ID"),
    host: str = typer.Option(..., "--host"),
    port: int = typer.Option(..., "--port"),
    security: str = typer.Option("starttls", "--security", help="ssl|starttls|none"),
    username: str = typer.Option(None, "--username", help="SMTP login (default: the IMAP one)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the SMTP password from standard input."
    ),
    allow_self_signed: bool = typer.Option(
        False, "--allow-self-signed", help="Accept a server certificate that is not trusted."
    ),
    preset: str = typer.Option(
        None, "--preset", help="Provider limits to apply (default: guessed from the host)."
    ),
) -> None:
    """Set how a mailbox sends: its SMTP server (and login, if not the IMAP one)."""
    if username and not password_stdin:
        raise BadInput("--username needs --password-stdin.", hint="Pipe the SMTP password in.")
    password = read_secret_stdin("SMTP password") if password_stdin else None
    from mailroom.services.host_policy import OPERATOR
    from mailroom.services.mailbox_checks import SmtpInput
    from mailroom.services.mailbox_setup import set_outgoing

    smtp = SmtpInput(
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
        allow_self_signed=allow_self_signed,
        preset=preset,
    )
    app = get_app()
    with app.sessions() as session:
        summary = set_outgoing(
            session=session, app=app, mailbox_id=mailbox_id, smtp=smtp, network=OPERATOR
        )
    limits = summary["limits"]
    assert isinstance(limits, dict)
    console.print(
        f"Mailbox {mailbox_id} sends through {host}:{port} ({summary['security']}); "
        f"limits of {summary['preset']}: {limits['recipients_per_message']} recipients per "
        f"message, {limits['messages_per_day'] or 'no'} messages per day."
    )


def company_dropbox(
    name: str = typer.Argument(..., help="The company's name."),
    rotate: bool = typer.Option(False, "--rotate", help="Make a new address (the old one stops)."),
    unknown_senders: str = typer.Option(
        None, "--unknown-senders", help="refuse|quarantine mail from non-users."
    ),
) -> None:
    """Print the company's private BCC / forward address."""
    with transaction(get_app().sessions) as session:
        company = get_company(session, name)
        token = ensure_token(
            session, company=company, rotate=rotate, unknown_senders=unknown_senders
        )
        address, policy = drop_address(token.token), token.unknown_senders
    print(address)
    err_console.print(f"Mail from senders who are not users of {name}: {policy}.", highlight=False)
    problem = domain_problem()
    if problem is not None:
        err_console.print(f"Note: {problem}. {DOMAIN_HINT}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.add_typer(outbox_app, name="outbox")
    mailbox_app.command("smtp")(mailbox_smtp)
    company_app.command("dropbox")(company_dropbox)
