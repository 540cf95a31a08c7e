"""Connecting and changing mailboxes from the dashboard and the API: one set of steps.

Pages and API routes call these functions, which call the same services as the CLI
(`sync.mailboxes.add_mailbox` / `edit_mailbox`, `outbox.smtp_settings.set_smtp` /
`check_smtp`) after the access checks of `security.access`.

Invariants:
- nothing is saved that did not just log in: connecting tests the incoming server (IMAP
  or POP3, RFC 3501 LOGIN / RFC 1939 USER+PASS) and, when SMTP settings are given, the
  SMTP server (RFC 4954 AUTH) before `add_mailbox`; a new password or new SMTP settings
  are tested before they replace the old ones;
- a password is only ever passed on to the connectors and the encrypting services; it
  is never put into an error, a page or an API answer;
- the company's mailbox limit is checked before a mailbox is added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors.base import FolderInfo, FolderRole, Security, ServerSettings
from mailroom.db.models import Company, Mailbox, User
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.digits import is_number
from mailroom.errors import BadInput
from mailroom.outbox.smtp_settings import check_smtp, set_smtp
from mailroom.sync.mailboxes import PROTOCOLS, add_mailbox, edit_mailbox, server_settings

BACKFILL_CHOICES = {"30": "Last 30 days", "90": "Last 90 days", "365": "Last year", "all": "All"}


@dataclass(frozen=True, slots=True)
class SmtpInput:
    """SMTP settings as typed in a form or sent to the API; no user name: the IMAP login."""

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = None


def settings_of(
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    allow_self_signed: bool = False,
    what: str = "IMAP",
) -> ServerSettings:
    """Checked server settings; `BadInput` naming the field to fix otherwise."""
    try:
        sec = Security(security)
    except ValueError:
        raise BadInput(
            f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
        ) from None
    if not host.strip() or any(c.isspace() for c in host.strip()):
        raise BadInput(
            f"The {what} server name is empty or not a host name.",
            hint=f"Pick a provider or type the {what} host.",
        )
    if not 0 < port < 65536:
        raise BadInput(f"The {what} port {port} is out of range (1-65535).")
    if not password:
        raise BadInput("The password is empty.", hint="Type the mailbox's password.")
    return ServerSettings(
        host=host.strip(),
        port=port,
        username=username.strip(),
        password=password,
        security=sec,
        allow_self_signed=allow_self_signed,
        timeout=20.0,
    )


def probe_incoming(protocol: str, settings: ServerSettings) -> list[FolderInfo]:
    """Log in and list the folders (POP3: its one inbox); changes nothing on the server."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"Unknown protocol {protocol!r}.", hint=f"Use {' or '.join(PROTOCOLS)}.")
    if protocol == "pop3":
        from mailroom.connectors.pop3 import Pop3Mailbox

        with Pop3Mailbox.connect(settings):
            pass
        return [FolderInfo(name="INBOX", role=FolderRole.INBOX)]
    from mailroom.connectors.imap import connect

    source = connect(settings)
    try:
        return list(source.list_folders())
    finally:
        source.close()


def probe_smtp(settings: ServerSettings) -> str:
    """Connect, secure and log in to an SMTP server, send nothing; a line saying so."""
    from mailroom.connectors.smtp import SmtpSender

    with SmtpSender.connect(settings):
        pass
    return f"SMTP: logged in to {settings.host}:{settings.port} as {settings.username}."


def smtp_server_settings(incoming: ServerSettings, smtp: SmtpInput) -> ServerSettings:
    """The SMTP server's settings; without a user name of its own, the incoming login."""
    if smtp.username and not smtp.password:
        raise BadInput(
            "An SMTP user name needs its password.",
            hint="Type the SMTP password, or leave the SMTP user name empty to use the "
            "mailbox's login.",
        )
    login = (smtp.username, smtp.password or "") if smtp.username else None
    return settings_of(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=login[0] if login else incoming.username,
        password=login[1] if login else incoming.password,
        allow_self_signed=incoming.allow_self_signed,
        what="SMTP",
    )


def since_of(backfill: str) -> date | None:
    if backfill == "all":
        return None
    if not is_number(backfill) or int(backfill) > 36500:
        raise BadInput(f"Unknown backfill window {backfill!r}.", hint="Pick one from the list.")
    return (datetime.now(UTC) - timedelta(days=int(backfill))).date()


def check_limit(db: Session, company: Company) -> None:
    limit = company.mailbox_limit
    if limit is None:
        return
    used = db.scalar(
        select(func.count()).select_from(Mailbox).where(Mailbox.company_id == company.id)
    )
    if (used or 0) >= limit:
        raise BadInput(
            f"Your company has reached its limit of {limit} mailboxes.",
            hint="Ask an admin to raise the limit under Admin → Settings.",
        )


def connect_mailbox(
    db: Session,
    app: App,
    *,
    user: User,
    company: Company,
    protocol: str,
    incoming: ServerSettings,
    smtp: SmtpInput | None = None,
    folders: list[str] | None = None,
    backfill: str = "90",
    aliases: list[str] | None = None,
) -> Mailbox:
    """Test, then save a new mailbox of `user` (flushed; the caller commits)."""
    check_limit(db, company)
    since = since_of(backfill)
    probe_incoming(protocol, incoming)
    if smtp is not None:
        probe_smtp(smtp_server_settings(incoming, smtp))
    mailbox = add_mailbox(
        db,
        app.secrets,
        user=user,
        host=incoming.host,
        port=incoming.port,
        password=incoming.password,
        protocol=protocol,
        security=incoming.security.value,
        username=incoming.username,
        aliases=aliases or (),
        folders=(folders or ()) if protocol == "imap" else (),
        allow_self_signed=incoming.allow_self_signed,
        since=since,
    )
    if smtp is not None:
        save_smtp(db, app, mailbox, smtp, test=False)
    return mailbox


def save_smtp(
    db: Session, app: App, mailbox: Mailbox, smtp: SmtpInput, *, test: bool = True
) -> MailboxSmtp:
    """Set the mailbox's SMTP settings, after logging in with them when `test` is set."""
    if test:
        probe_smtp(smtp_server_settings(server_settings(mailbox, app.secrets), smtp))
    return set_smtp(
        db,
        app.secrets,
        mailbox=mailbox,
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username or None,
        password=smtp.password if smtp.username else None,
        allow_self_signed=mailbox.allow_self_signed,
    )


def change_password(db: Session, app: App, mailbox: Mailbox, password: str) -> Mailbox:
    """Test the new password, then save it; a failed mailbox is re-enabled (edit_mailbox)."""
    if not password:
        raise BadInput("The new password is empty.", hint="Type the mailbox's new password.")
    current = server_settings(mailbox, app.secrets)
    probe_incoming(mailbox.protocol, replace(current, password=password, timeout=20.0))
    return edit_mailbox(db, app.secrets, mailbox, password=password)


def smtp_row(db: Session, mailbox: Mailbox) -> MailboxSmtp | None:
    return db.scalar(select(MailboxSmtp).where(MailboxSmtp.mailbox_id == mailbox.id))


def check_stored(db: Session, app: App, mailbox: Mailbox) -> list[str]:
    """Log in with the stored settings, incoming and (if set) SMTP; one line for each."""
    incoming = replace(server_settings(mailbox, app.secrets), timeout=20.0)
    folders = probe_incoming(mailbox.protocol, incoming)
    lines = [
        f"{mailbox.protocol.upper()}: logged in to {mailbox.host}:{mailbox.port} as "
        f"{mailbox.username}; {len(folders)} folder{'s' if len(folders) != 1 else ''}."
    ]
    row = smtp_row(db, mailbox)
    if row is None:
        lines.append("SMTP: not set, so this mailbox cannot send.")
    else:
        lines.append(check_smtp(mailbox, row, app.secrets))
    return lines
