"""Connected mailboxes: add, edit, enable/disable, list, open a source.

The password handed to `add_mailbox` or `edit_mailbox` is encrypted with the row's id as
associated data before the transaction commits; the clear text exists only in memory
while connecting. Editing the credentials or the server re-enables a failed mailbox
(health.reenable) and asks for a sync at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.connectors.base import MailboxSource, Security, ServerSettings
from mailroom.db.models import Company, Mailbox, MailboxAlias, User
from mailroom.errors import BadInput, NotFound
from mailroom.mail.addresses import normalise
from mailroom.security.secrets import SecretBox, mailbox_context
from mailroom.sync.health import reenable
from mailroom.sync.source import Pop3Source

PROTOCOLS = ("imap", "pop3")
DEFAULT_PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
}


def add_mailbox(
    session: Session,
    secrets: SecretBox,
    *,
    user: User,
    host: str,
    port: int,
    password: str,
    protocol: str = "imap",
    security: str = "ssl",
    username: str | None = None,
    aliases: Sequence[str] = (),
    folders: Sequence[str] = (),
    allow_self_signed: bool = False,
    since: date | None = None,
    delete_after_fetch: bool = False,
) -> Mailbox:
    """Connect a new mailbox (nothing is fetched until the next sync)."""
    if protocol not in PROTOCOLS:
        raise BadInput(
            f"Unknown protocol {protocol!r}.", hint=f"Use one of: {', '.join(PROTOCOLS)}."
        )
    try:
        sec = Security(security)
    except ValueError:
        raise BadInput(
            f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
        ) from None
    host = host.strip()
    if not host or any(c.isspace() for c in host):
        raise BadInput(f"{host!r} is not a host name.")
    if not 0 < port < 65536:
        raise BadInput(f"Port {port} is out of range (1-65535).")
    if not password:
        raise BadInput("The mailbox password is empty.", hint="Pipe it in with --password-stdin.")
    if delete_after_fetch and protocol != "pop3":
        raise BadInput(
            "Only POP3 mailboxes can delete fetched mail.", hint="Drop --delete-after-fetch."
        )
    if protocol == "pop3" and folders:
        raise BadInput("POP3 has no folders.", hint="Drop --folder for a POP3 mailbox.")
    clean_aliases = []
    for alias in aliases:
        address = normalise(alias)
        if address is None:
            raise BadInput(f"Alias {alias!r} is not an email address.")
        clean_aliases.append(address)
    mailbox = Mailbox(
        company_id=user.company_id,
        user_id=user.id,
        address=user.email,
        protocol=protocol,
        host=host,
        port=port,
        security=sec.value,
        username=(username or user.email).strip(),
        secret=b"",
        allow_self_signed=allow_self_signed,
        folders=list(dict.fromkeys(f for f in folders if f)),
        aliases=[MailboxAlias(address=a) for a in dict.fromkeys(clean_aliases)],
        since_date=since,
        delete_after_fetch=delete_after_fetch,
    )
    session.add(mailbox)
    session.flush()
    mailbox.secret = secrets.encrypt(password, context=mailbox_context(mailbox.id))
    session.flush()
    return mailbox


def get_mailbox(session: Session, mailbox_id: int, *, company_id: int | None = None) -> Mailbox:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None or (company_id is not None and mailbox.company_id != company_id):
        raise NotFound(f"No mailbox {mailbox_id}.", hint="List them with `mailroom mailbox list`.")
    return mailbox


def list_mailboxes(session: Session, *, company: Company | None = None) -> list[Mailbox]:
    query = select(Mailbox).order_by(Mailbox.id)
    if company is not None:
        query = query.where(Mailbox.company_id == company.id)
    return list(session.scalars(query))


def server_settings(mailbox: Mailbox, secrets: SecretBox) -> ServerSettings:
    return ServerSettings(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password=secrets.decrypt(mailbox.secret, context=mailbox_context(mailbox.id)),
        security=Security(mailbox.security),
        allow_self_signed=mailbox.allow_self_signed,
    )


def open_source(mailbox: Mailbox, secrets: SecretBox) -> MailboxSource | Pop3Source:
    """Connect and log in to the mailbox's server with its stored credentials."""
    if mailbox.protocol == "pop3":
        from mailroom.connectors.pop3 import Pop3Mailbox

        return Pop3Mailbox.connect(server_settings(mailbox, secrets))
    from mailroom.connectors.imap import ImapSource

    return ImapSource.connect(server_settings(mailbox, secrets))


def edit_mailbox(
    session: Session,
    secrets: SecretBox,
    mailbox: Mailbox,
    *,
    password: str | None = None,
    host: str | None = None,
    port: int | None = None,
    security: str | None = None,
    username: str | None = None,
    allow_self_signed: bool | None = None,
) -> Mailbox:
    """Change the credentials or server; the mailbox is re-enabled and synced at once."""
    if password is not None:
        if not password:
            raise BadInput("The mailbox password is empty.")
        mailbox.secret = secrets.encrypt(password, context=mailbox_context(mailbox.id))
    if host is not None:
        host = host.strip()
        if not host or any(c.isspace() for c in host):
            raise BadInput(f"{host!r} is not a host name.")
        mailbox.host = host
    if port is not None:
        if not 0 < port < 65536:
            raise BadInput(f"Port {port} is out of range (1-65535).")
        mailbox.port = port
    if security is not None:
        try:
            mailbox.security = Security(security).value
        except ValueError:
            raise BadInput(
                f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
            ) from None
    if username is not None:
        mailbox.username = username.strip()
    if allow_self_signed is not None:
        mailbox.allow_self_signed = allow_self_signed
    reenable(mailbox)
    session.flush()
    return mailbox


def set_enabled(mailbox: Mailbox, enabled: bool) -> None:
    """Disable (never synced, status `disabled`) or enable (pending, synced at once)."""
    if enabled:
        reenable(mailbox)
    else:
        mailbox.enabled = False
        mailbox.status = "disabled"
        mailbox.next_attempt_at = None


def request_sync(session: Session, mailbox: Mailbox) -> None:
    """Ask a running `mailroom serve` to sync this mailbox now ("send & receive")."""
    mailbox.sync_requested_at = datetime.now(UTC)
    session.flush()


def mailbox_summary(mailbox: Mailbox) -> dict[str, Any]:
    """The JSON shape `mailbox list --json` prints (never the secret)."""
    return {
        "id": mailbox.id,
        "address": mailbox.address,
        "name": mailbox.address,
        "user_id": mailbox.user_id,
        "company_id": mailbox.company_id,
        "protocol": mailbox.protocol,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "aliases": [a.address for a in mailbox.aliases],
        "folders": list(mailbox.folders),
        "status": mailbox.status,
        "last_error": mailbox.last_error,
        "last_success_at": mailbox.last_success_at.isoformat() if mailbox.last_success_at else None,
        "enabled": mailbox.enabled,
        "error_kind": mailbox.error_kind,
        "hint": mailbox.error_hint,
        "next_attempt_at": mailbox.next_attempt_at.isoformat() if mailbox.next_attempt_at else None,
        "since": mailbox.since_date.isoformat() if mailbox.since_date else None,
        "delete_after_fetch": mailbox.delete_after_fetch,
        "progress": {
            "done": mailbox.progress_done,
            "total": mailbox.progress_total,
            "done_bytes": mailbox.progress_done_bytes,
            "total_bytes": mailbox.progress_total_bytes,
        },
    }
