"""Connecting a mailbox and changing its settings: log in first, then save.

Invariants (tests: test_mailbox_login_before_save.py, test_company_mailbox_limit.py):
- nothing is saved that did not just log in: a new mailbox logs in to its incoming server
  (IMAP or POP3) and, when SMTP settings are given, to its SMTP server before it is
  saved; changed incoming or SMTP settings log in before they replace the old ones, so a
  wrong password leaves the stored settings as they were;
- no database transaction is open while a server is logged in to: the caller's read
  transaction is ended first, and the save is one short transaction afterwards;
- the company's mailbox limit is checked before logging in (a quick refusal) and again
  in the saving transaction, with the company row locked (PostgreSQL; SQLite serialises
  writers), so two connects at once cannot both take the last slot;
- a password is only ever passed on to the connectors and the encrypting store; it is
  never put into an error, a page or an answer;
- a stored password is only ever sent to the host and port it was entered for
  (test_secret_bound_to_its_server.py): a new incoming host or port needs the password in
  the same request (mailboxes.store.check_rebind); SMTP uses the incoming password only on
  the incoming host, else its own, entered with it (outbox.smtp_settings);
- through the web and the API (`network`, services.host_policy), no server on a private
  or local address is connected to unless the operator allows it, connection tests are
  rate-limited per user, and a failed greeting's text is not echoed;
- only a mailbox's owner changes its servers or login (lookup.require_owner): an admin
  may disable, enable, test, sync or disconnect a member's mailbox, never re-point it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors.base import ServerSettings
from mailroom.connectors.oauth2 import TokenSet
from mailroom.crm.access import Viewer
from mailroom.db.models import Company, Mailbox, User
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.digits import is_number
from mailroom.errors import BadInput
from mailroom.mailboxes.oauth import Grant, save_grant
from mailroom.mailboxes.store import (
    add_mailbox,
    check_aliases,
    check_layout,
    check_protocol,
    check_rebind,
    check_security,
    clean_aliases,
    count_mailboxes,
    edit_mailbox,
    incoming_settings,
    settings_of,
)
from mailroom.outbox.smtp_settings import (
    SMTP_PURPOSE,
    kept_secret,
    needs_own_password,
    same_host,
    set_smtp,
    smtp_summary,
)
from mailroom.security.secrets import mailbox_context
from mailroom.services.aliases import request_confirmations
from mailroom.services.host_policy import HostPolicy
from mailroom.services.lookup import load_mailbox, require_owner
from mailroom.services.mailbox_checks import (
    LOGIN_TIMEOUT,
    SmtpInput,
    probe_incoming,
    probe_smtp,
    servers_of,
    smtp_server_settings,
)

BACKFILL_CHOICES = {"30": "Last 30 days", "90": "Last 90 days", "365": "Last year", "all": "All"}


@dataclass(frozen=True, slots=True)
class OAuthSignIn:
    """A finished OAuth sign-in: the provider and the tokens it issued (memory only)."""

    provider: str
    tokens: TokenSet = field(repr=False)

    def grant(self) -> Grant:
        """The tokens as a grant to store (mailboxes.oauth)."""
        return Grant(
            provider=self.provider,
            refresh_token=self.tokens.refresh_token,
            access_token=self.tokens.access_token,
            access_expires_at=datetime.fromtimestamp(self.tokens.expires_at, UTC),
            scope=self.tokens.scope,
        )


@dataclass(frozen=True, slots=True)
class NewMailbox:
    """A mailbox to connect, as typed or sent; checked by `connect_mailbox`."""

    host: str
    port: int
    password: str
    username: str | None = None
    protocol: str = "imap"
    security: str = "ssl"
    allow_self_signed: bool = False
    smtp: SmtpInput | None = None
    folders: Sequence[str] = ()
    aliases: Sequence[str] = ()
    since: date | None = None
    delete_after_fetch: bool = False
    approve_aliases: bool = False  # the operator's CLI; the web's wait for an admin
    oauth: OAuthSignIn | None = None  # signs in with the token (XOAUTH2), password empty


def since_of(backfill: str) -> date | None:
    """The first day to fetch for a backfill choice (days back, or "all": None)."""
    if backfill == "all":
        return None
    if not is_number(backfill) or int(backfill) > 36500:
        raise BadInput(f"Unknown backfill window {backfill!r}.", hint="Pick one from the list.")
    return (datetime.now(UTC) - timedelta(days=int(backfill))).date()


def check_limit(session: Session, *, company_id: int, lock: bool = False) -> None:
    """`BadInput` when the company already has as many mailboxes as its limit allows."""
    query = select(Company.mailbox_limit).where(Company.id == company_id)
    limit = session.scalar(query.with_for_update() if lock else query)
    if limit is None:
        return
    if count_mailboxes(session, company_id=company_id) >= limit:
        raise BadInput(
            f"Your company has reached its limit of {limit} mailboxes.",
            hint="Ask an admin to raise the limit (Admin → Settings, or "
            "`mailroom company limit NAME N`), or disconnect a mailbox.",
        )


def incoming_of(new: NewMailbox, *, user_email: str) -> ServerSettings:
    """The new mailbox's checked incoming settings (the login defaults to the address)."""
    check_protocol(new.protocol)
    check_layout(
        protocol=new.protocol, folders=new.folders, delete_after_fetch=new.delete_after_fetch
    )
    clean_aliases(new.aliases)
    return settings_of(
        host=new.host,
        port=new.port,
        security=new.security,
        username=new.username or user_email,
        password=new.password,
        allow_self_signed=new.allow_self_signed,
        timeout=LOGIN_TIMEOUT,
        access_token=new.oauth.tokens.access_token if new.oauth else None,
    )


def connect_mailbox(
    *, session: Session, app: App, user: User, new: NewMailbox, network: HostPolicy
) -> int:
    """Check, log in (incoming, then SMTP if given), then save; the new mailbox's id.

    `network` admits the attempt and both hosts before either is connected to. The
    session's transaction is ended before logging in; the save is committed here.
    """
    user_id, company_id, email = user.id, user.company_id, user.email
    incoming = incoming_of(new, user_email=email)
    new = _smtp_password_for_other_host(new, incoming=incoming)
    check_aliases(session, user=user, aliases=new.aliases)  # before logging in
    smtp = None if new.smtp is None else smtp_server_settings(incoming=incoming, smtp=new.smtp)
    check_limit(session, company_id=company_id)
    session.rollback()  # no transaction open while logging in
    network.admit(*servers_of(incoming, smtp))
    with network.screening():
        probe_incoming(protocol=new.protocol, settings=incoming)
        if smtp is not None:
            probe_smtp(settings=smtp)
    try:
        check_limit(session, company_id=company_id, lock=True)
        mailbox_id = _save_new(session, app, user_id=user_id, new=new, incoming=incoming)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return mailbox_id


def _smtp_password_for_other_host(new: NewMailbox, *, incoming: ServerSettings) -> NewMailbox:
    """The typed password, stored for an SMTP server on another host that has no login of
    its own: the stored IMAP password is never sent to another host later."""
    smtp = new.smtp
    if smtp is None or smtp.username or smtp.password or same_host(smtp.host, incoming.host):
        return new
    if new.oauth is not None:  # the token goes to the provider's SMTP host; no password
        return new
    return replace(new, smtp=replace(smtp, password=new.password))


def _save_new(
    session: Session, app: App, *, user_id: int, new: NewMailbox, incoming: ServerSettings
) -> int:
    owner = session.get(User, user_id)
    assert owner is not None
    mailbox = add_mailbox(
        session,
        app.secrets,
        user=owner,
        host=incoming.host,
        port=incoming.port,
        password=incoming.password,
        protocol=new.protocol,
        security=incoming.security.value,
        username=incoming.username,
        aliases=new.aliases,
        folders=new.folders if new.protocol == "imap" else (),
        allow_self_signed=incoming.allow_self_signed,
        since=new.since,
        delete_after_fetch=new.delete_after_fetch,
        approve_aliases=new.approve_aliases,
        bearer=new.oauth is not None,
    )
    if not new.approve_aliases:  # outside the company's domains: a confirmation mail
        session.flush()
        request_confirmations(session, mailbox=mailbox, public_url=app.settings.public_url)
    if new.oauth is not None:
        save_grant(session, app.secrets, mailbox=mailbox, grant=new.oauth.grant())
    if new.smtp is not None:
        _save_smtp(session, app, mailbox_id=mailbox.id, smtp=new.smtp, bearer=bool(new.oauth))
    return mailbox.id


@dataclass(frozen=True, slots=True)
class IncomingChange:
    """New incoming settings; None leaves a field as it is."""

    password: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None


def edit_incoming(
    *,
    session: Session,
    app: App,
    mailbox_id: int,
    change: IncomingChange,
    network: HostPolicy,
    viewer: Viewer | None = None,
) -> None:
    """Log in with the changed incoming settings, then save them (committed here).

    Saving re-enables a failed or disabled mailbox and asks for a sync at once; a login
    that fails raises its error and leaves the stored settings as they were.
    """
    mailbox = require_owner(
        load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer), viewer=viewer
    )
    if change.password is not None and not change.password:
        raise BadInput("The new password is empty.", hint="Give the mailbox's new password.")
    check_rebind(mailbox, host=change.host, port=change.port, password=change.password)
    protocol = mailbox.protocol
    current = _current_incoming(mailbox, app, change)
    settings = settings_of(
        host=current.host if change.host is None else change.host,
        port=current.port if change.port is None else change.port,
        security=current.security.value if change.security is None else change.security,
        username=current.username if change.username is None else change.username,
        password=current.password if change.password is None else change.password,
        allow_self_signed=current.allow_self_signed,
        timeout=LOGIN_TIMEOUT,
    )
    session.rollback()  # no transaction open while logging in
    network.admit(*servers_of(settings))
    with network.screening():
        probe_incoming(protocol=protocol, settings=settings)
    try:
        edit_mailbox(
            session,
            app.secrets,
            load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer),
            password=change.password,
            host=change.host,
            port=change.port,
            security=change.security,
            username=change.username,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _current_incoming(mailbox: Mailbox, app: App, change: IncomingChange) -> ServerSettings:
    """The stored login; with a new password given, the old one is not decrypted at all."""
    if change.password is None:
        return incoming_settings(mailbox, app.secrets)
    return ServerSettings(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password=change.password,
        security=check_security(mailbox.security),
        allow_self_signed=mailbox.allow_self_signed,
    )


def set_outgoing(
    *,
    session: Session,
    app: App,
    mailbox_id: int,
    smtp: SmtpInput,
    network: HostPolicy,
    viewer: Viewer | None = None,
) -> dict[str, object]:
    """Log in to the SMTP server with the new settings, then save them; their summary.

    Committed here; a login that fails leaves the stored SMTP settings as they were.
    """
    mailbox = require_owner(
        load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer), viewer=viewer
    )
    settings = smtp_server_settings(
        incoming=_incoming_for_smtp(session, mailbox, app, smtp), smtp=smtp
    )
    session.rollback()  # no transaction open while logging in
    network.admit(*servers_of(settings))
    with network.screening():
        probe_smtp(settings=settings)
    try:
        load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
        summary = smtp_summary(_save_smtp(session, app, mailbox_id=mailbox_id, smtp=smtp))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return summary


def _incoming_for_smtp(
    session: Session, mailbox: Mailbox, app: App, smtp: SmtpInput
) -> ServerSettings:
    """The login SMTP falls back on, bound to where each secret was entered.

    Nothing is decrypted when the request gives the SMTP password; else the stored SMTP
    password if the server did not move, else the incoming password on the incoming host
    only (`BadInput` for another host).
    """
    blank = ServerSettings(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password="",
        allow_self_signed=mailbox.allow_self_signed,
    )
    if smtp.password or smtp.username:
        return blank
    row = session.scalar(select(MailboxSmtp).where(MailboxSmtp.mailbox_id == mailbox.id))
    kept = kept_secret(row, host=smtp.host, port=smtp.port)
    if kept is not None:
        context = mailbox_context(mailbox.id, SMTP_PURPOSE)
        return replace(blank, password=app.secrets.decrypt(kept, context=context))
    if not same_host(smtp.host, mailbox.host):
        raise needs_own_password(mailbox, host=smtp.host)
    return incoming_settings(mailbox, app.secrets)


def _save_smtp(
    session: Session,
    app: App,
    *,
    mailbox_id: int,
    smtp: SmtpInput,
    bearer: bool = False,
) -> MailboxSmtp:
    """Store SMTP settings that just logged in (the caller commits)."""
    mailbox = session.get(Mailbox, mailbox_id)
    assert mailbox is not None
    self_signed = (
        mailbox.allow_self_signed if smtp.allow_self_signed is None else smtp.allow_self_signed
    )
    return set_smtp(
        session,
        app.secrets,
        mailbox=mailbox,
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username or None,
        password=smtp.password or None,
        allow_self_signed=self_signed,
        preset=smtp.preset,
        bearer=bearer,
    )


def set_mailbox_limit(*, session: Session, company_id: int, limit: int | None) -> int | None:
    """Set (a whole number, 0 or more) or clear (None) the company's mailbox limit.

    Flushed; the caller commits (the admin settings page saves it with the privacy
    settings in one transaction). Mailboxes already connected beyond a lowered limit stay connected;
    the sync scheduler only syncs the first `limit` of them (sync.claims).
    """
    if limit is not None and limit < 0:
        raise BadInput(f"A mailbox limit of {limit} is below 0.", hint="Give 0 or more, or none.")
    company = session.get(Company, company_id)
    assert company is not None
    company.mailbox_limit = limit
    session.flush()
    return limit
