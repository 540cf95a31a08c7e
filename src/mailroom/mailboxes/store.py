"""Connected mailboxes as rows: checked settings, add, edit, enable/disable, list, get.

The password handed to `add_mailbox` or `edit_mailbox` is encrypted with the row's id as
associated data (security.secrets) before the transaction commits; the clear text exists
only in memory while connecting. Editing the credentials or the server re-enables a
failed mailbox (status.reenable) and asks for a sync at once.

The stored password is bound to the server it was entered for: `edit_mailbox` refuses a
new host or port without a new password (`check_rebind`), so the old one is never sent to
another server.

These functions save what they are given; they do not log in. "Nothing is saved that did
not just log in" is the rule of `mailroom.services.mailbox_setup`, which calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.connectors.base import Security, ServerSettings
from mailroom.db.models import Company, Mailbox, MailboxAlias, User
from mailroom.errors import BadInput, NotFound
from mailroom.mail.addresses import normalise
from mailroom.mailboxes.status import disable, reenable
from mailroom.security.secrets import SecretBox, mailbox_context

PROTOCOLS = ("imap", "pop3")
DEFAULT_PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
}


def check_protocol(protocol: str) -> str:
    """`protocol` if Mailroom can read mail with it; `BadInput` otherwise."""
    if protocol not in PROTOCOLS:
        raise BadInput(
            f"Unknown protocol {protocol!r}.", hint=f"Use one of: {', '.join(PROTOCOLS)}."
        )
    return protocol


def check_security(security: str) -> Security:
    """The `Security` named by `security`; `BadInput` otherwise."""
    try:
        return Security(security)
    except ValueError:
        raise BadInput(
            f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
        ) from None


def check_host(host: str, *, what: str = "IMAP") -> str:
    """The host name without surrounding blanks; `BadInput` if empty or not one word."""
    clean = host.strip()
    if not clean or any(c.isspace() for c in clean):
        raise BadInput(
            f"The {what} server name {host!r} is empty or not a host name.",
            hint=f"Give the {what} server's host name (pick a provider in the dashboard).",
        )
    return clean


def check_port(port: int, *, what: str = "IMAP") -> int:
    """`port` if it is a TCP port number; `BadInput` otherwise."""
    if not 0 < port < 65536:
        raise BadInput(f"The {what} port {port} is out of range (1-65535).")
    return port


def settings_of(
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    allow_self_signed: bool = False,
    what: str = "IMAP",
    timeout: float = 20.0,
    access_token: str | None = None,
) -> ServerSettings:
    """Checked server settings (incoming or SMTP); `BadInput` naming the field to fix.

    With `access_token` (an OAuth sign-in) the password is empty: the token logs in."""
    sec = check_security(security)
    clean_host = check_host(host, what=what)
    check_port(port, what=what)
    if not password and not access_token:
        raise BadInput(
            "The password is empty.",
            hint="Type the mailbox's password, or pipe it in with --password-stdin.",
        )
    return ServerSettings(
        host=clean_host,
        port=port,
        username=username.strip(),
        password=password,
        security=sec,
        allow_self_signed=allow_self_signed,
        timeout=timeout,
        access_token=access_token,
    )


def clean_aliases(aliases: Sequence[str]) -> list[str]:
    """The aliases as normalised addresses, in order, without repeats; `BadInput` if not."""
    clean = []
    for alias in aliases:
        address = normalise(alias)
        if address is None:
            raise BadInput(f"Alias {alias!r} is not an email address.")
        clean.append(address)
    return list(dict.fromkeys(clean))


def check_aliases(session: Session, *, user: User, aliases: Sequence[str]) -> list[str]:
    """The clean aliases, without the owner's own address; `BadInput` for one taken.

    An alias must never be another user's address, another mailbox's address or another
    user's alias (issue 11): access control would count it as the owner's. The refusal is
    the same whoever holds the address, in whichever company.
    """
    clean = [a for a in clean_aliases(aliases) if a != user.email]
    if not clean:
        return clean
    taken = set(session.scalars(select(User.email).where(User.email.in_(clean))))
    taken.update(
        session.scalars(
            select(MailboxAlias.address)
            .join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id)
            .where(MailboxAlias.address.in_(clean), Mailbox.user_id != user.id)
        )
    )
    taken.update(
        session.scalars(
            select(Mailbox.address).where(Mailbox.address.in_(clean), Mailbox.user_id != user.id)
        )
    )
    for alias in clean:
        if alias in taken:
            raise BadInput(
                f"{alias} cannot be an alias of this mailbox.",
                hint="An alias is an address only you send as; ask an admin if it should be.",
            )
    return clean


def check_layout(*, protocol: str, folders: Sequence[str], delete_after_fetch: bool) -> None:
    """Folders and delete-after-fetch only where the protocol has them."""
    if delete_after_fetch and protocol != "pop3":
        raise BadInput(
            "Only POP3 mailboxes can delete fetched mail.", hint="Drop --delete-after-fetch."
        )
    if protocol == "pop3" and folders:
        raise BadInput("POP3 has no folders.", hint="Drop --folder for a POP3 mailbox.")


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
    approve_aliases: bool = False,
    bearer: bool = False,
) -> Mailbox:
    """Save a new mailbox row of `user` (flushed; nothing is fetched until a sync).

    `bearer`: an OAuth mailbox, no password (its grant is saved by mailboxes.oauth).

    Its aliases are checked (`check_aliases`) and pending unless `approve_aliases` (the
    operator's CLI): only an admin's approval makes them count for access control.
    """
    check_protocol(protocol)
    settings = settings_of(
        host=host,
        port=port,
        security=security,
        username=username or user.email,
        password=password,
        allow_self_signed=allow_self_signed,
        access_token="bearer" if bearer else None,
    )
    check_layout(protocol=protocol, folders=folders, delete_after_fetch=delete_after_fetch)
    mailbox = Mailbox(
        company_id=user.company_id,
        user_id=user.id,
        address=user.email,
        protocol=protocol,
        host=settings.host,
        port=port,
        security=settings.security.value,
        username=settings.username,
        secret=b"",
        allow_self_signed=allow_self_signed,
        folders=list(dict.fromkeys(f for f in folders if f)),
        aliases=[
            MailboxAlias(address=a, approved=approve_aliases)
            for a in check_aliases(session, user=user, aliases=aliases)
        ],
        since_date=since,
        delete_after_fetch=delete_after_fetch,
    )
    session.add(mailbox)
    session.flush()
    mailbox.secret = secrets.encrypt(password, context=mailbox_context(mailbox.id))
    session.flush()
    return mailbox


def get_mailbox(session: Session, mailbox_id: int, *, company_id: int | None = None) -> Mailbox:
    """The mailbox with this id (of this company, when given); `NotFound` otherwise."""
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None or (company_id is not None and mailbox.company_id != company_id):
        raise NotFound(f"No mailbox {mailbox_id}.", hint="List them with `mailroom mailbox list`.")
    return mailbox


def list_mailboxes(session: Session, *, company: Company | None = None) -> list[Mailbox]:
    """Every mailbox (of one company, when given), by id."""
    query = select(Mailbox).order_by(Mailbox.id)
    if company is not None:
        query = query.where(Mailbox.company_id == company.id)
    return list(session.scalars(query))


def count_mailboxes(session: Session, *, company_id: int) -> int:
    """How many mailboxes the company has connected (what its mailbox limit counts)."""
    used = session.scalar(
        select(func.count()).select_from(Mailbox).where(Mailbox.company_id == company_id)
    )
    return used or 0


def incoming_settings(mailbox: Mailbox, secrets: SecretBox) -> ServerSettings:
    """The stored IMAP or POP3 login of the mailbox, password decrypted (memory only)."""
    return ServerSettings(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password=secrets.decrypt(mailbox.secret, context=mailbox_context(mailbox.id)),
        security=Security(mailbox.security),
        allow_self_signed=mailbox.allow_self_signed,
    )


def check_rebind(
    mailbox: Mailbox, *, host: str | None, port: int | None, password: str | None
) -> None:
    """`BadInput` when the host or port changes without a new password.

    The stored password was entered for the stored host and port; it is never sent to
    another server.
    """
    moved_host = host is not None and host.strip().rstrip(".").lower() != (
        mailbox.host.rstrip(".").lower()
    )
    moved_port = port is not None and port != mailbox.port
    if (moved_host or moved_port) and not password:
        raise BadInput(
            "A new server needs the mailbox's password: the stored one is only ever sent "
            f"to {mailbox.host}:{mailbox.port}, where it was entered.",
            hint="Give the password with the new host or port (--password-stdin).",
        )


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
    """Save changed credentials or server; the mailbox is re-enabled and synced at once."""
    check_rebind(mailbox, host=host, port=port, password=password)
    if password is not None:
        if not password:
            raise BadInput("The mailbox password is empty.")
        mailbox.secret = secrets.encrypt(password, context=mailbox_context(mailbox.id))
    if host is not None:
        mailbox.host = check_host(host)
    if port is not None:
        mailbox.port = check_port(port)
    if security is not None:
        mailbox.security = check_security(security).value
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
        disable(mailbox)


def request_sync(session: Session, mailbox: Mailbox) -> None:
    """Ask a running `mailroom serve` to sync this mailbox now ("send & receive")."""
    mailbox.sync_requested_at = datetime.now(UTC)
    session.flush()
