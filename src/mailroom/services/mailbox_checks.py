"""Logging in without saving: new settings (before they are saved) and stored ones.

Incoming: IMAP (RFC 3501 LOGIN, then LIST) or POP3 (RFC 1939 USER/PASS, then UIDL);
outgoing: SMTP (RFC 4954 AUTH after STARTTLS or on TLS). Nothing here writes to the
database or changes anything on a server; a failure raises the connector's error
(`MailServerError` subclasses), whose message never contains the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors.base import FolderInfo, FolderRole, ServerSettings
from mailroom.crm.access import Viewer
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.errors import BadInput
from mailroom.mailboxes.oauth import has_grant
from mailroom.mailboxes.store import check_protocol, incoming_settings, settings_of
from mailroom.mailboxes.tokens import with_token
from mailroom.outbox.smtp_settings import check_smtp_settings, smtp_settings
from mailroom.services.host_policy import HostPolicy
from mailroom.services.lookup import load_mailbox

LOGIN_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class SmtpInput:
    """SMTP settings as typed or sent; without a user name, sending uses the incoming one.

    A password without a user name is the SMTP server's own password for the incoming
    user name; without either, the incoming password (only on the incoming host).

    `allow_self_signed` None means: as the mailbox's incoming server.
    """

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    allow_self_signed: bool | None = None
    preset: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingProbe:
    """What logging in to an incoming server found: its folders, or POP3's message count."""

    protocol: str
    folders: list[FolderInfo] = field(default_factory=list)
    messages: int | None = None


@dataclass(frozen=True, slots=True)
class MailboxTest:
    """The outcome of testing a stored mailbox: its login, what it saw, and SMTP's line."""

    mailbox_id: int
    protocol: str
    host: str
    port: int
    username: str
    probe: IncomingProbe
    smtp_line: str | None

    def lines(self) -> list[str]:
        """One line per server, as the dashboard and the API show them."""
        count = len(self.probe.folders) if self.probe.messages is None else 1
        first = (
            f"{self.protocol.upper()}: logged in to {self.host}:{self.port} as "
            f"{self.username}; {count} folder{'s' if count != 1 else ''}."
        )
        smtp = self.smtp_line or "SMTP: not set, so this mailbox cannot send."
        return [first, smtp]


def probe_incoming(*, protocol: str, settings: ServerSettings) -> IncomingProbe:
    """Log in and list the folders (POP3: count the maildrop); changes nothing."""
    check_protocol(protocol)
    if protocol == "pop3":
        from mailroom.connectors.pop3 import Pop3Mailbox

        box = Pop3Mailbox.connect(settings)
        try:
            count = len(box.listing())
        finally:
            box.abort()  # no QUIT needed: nothing was marked for deletion
        return IncomingProbe(
            protocol, [FolderInfo(name="INBOX", role=FolderRole.INBOX)], messages=count
        )
    from mailroom.connectors.imap import connect

    source = connect(settings)
    try:
        return IncomingProbe(protocol, list(source.list_folders()))
    finally:
        source.close()


def probe_smtp(*, settings: ServerSettings) -> str:
    """Connect, secure and log in to an SMTP server, send nothing; a line saying so."""
    from mailroom.connectors.smtp import SmtpSender

    with SmtpSender.connect(settings):
        pass
    return f"SMTP: logged in to {settings.host}:{settings.port} as {settings.username}."


def smtp_server_settings(*, incoming: ServerSettings, smtp: SmtpInput) -> ServerSettings:
    """The SMTP server's checked settings: its own login where given, else the incoming one.

    `incoming` holds a password typed in the same request (a new mailbox, a test of
    unsaved settings); stored secrets are bound by services.mailbox_setup.set_outgoing.
    """
    if smtp.username and not smtp.password:
        raise BadInput(
            "An SMTP user name needs its password.",
            hint="Give the SMTP password (--password-stdin), or leave the SMTP user name "
            "empty to use the mailbox's login.",
        )
    return settings_of(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username or incoming.username,
        password=smtp.password or incoming.password,
        access_token=None if smtp.username else incoming.access_token,
        allow_self_signed=(
            incoming.allow_self_signed if smtp.allow_self_signed is None else smtp.allow_self_signed
        ),
        what="SMTP",
    )


def test_settings(
    *,
    protocol: str,
    incoming: ServerSettings,
    network: HostPolicy,
    smtp: SmtpInput | None = None,
) -> tuple[IncomingProbe, list[str]]:
    """Log in with settings not saved yet: incoming, and SMTP when given; saves nothing.

    `network` admits the test and both hosts before anything connects."""
    outgoing = None if smtp is None else smtp_server_settings(incoming=incoming, smtp=smtp)
    network.admit(*servers_of(incoming, outgoing))
    lines = []
    with network.screening():
        probe = probe_incoming(protocol=protocol, settings=incoming)
        if outgoing is not None:
            lines.append(probe_smtp(settings=outgoing))
    return probe, lines


def servers_of(*settings: ServerSettings | None) -> list[tuple[str, int]]:
    """The (host, port) of each server given, for `HostPolicy.admit`."""
    return [(s.host, s.port) for s in settings if s is not None]


def smtp_row(session: Session, *, mailbox_id: int) -> MailboxSmtp | None:
    """The mailbox's SMTP settings row, if it has one."""
    return session.scalar(select(MailboxSmtp).where(MailboxSmtp.mailbox_id == mailbox_id))


def test_mailbox(
    *,
    session: Session,
    app: App,
    mailbox_id: int,
    network: HostPolicy,
    viewer: Viewer | None = None,
) -> MailboxTest:
    """Log in with the stored settings, incoming and (if set) SMTP; sends nothing.

    `viewer` (web callers) must be allowed to manage the mailbox. `network` admits the
    test and the stored hosts again (a name may resolve elsewhere now). The session's
    transaction is ended before the first login (it only read).
    """
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    incoming = replace(incoming_settings(mailbox, app.secrets), timeout=LOGIN_TIMEOUT)
    row = smtp_row(session, mailbox_id=mailbox.id)
    bearer = has_grant(session, mailbox.id)
    smtp = smtp_settings(mailbox, row, app.secrets, bearer=bearer) if row is not None else None
    found = MailboxTest(
        mailbox_id=mailbox.id,
        protocol=mailbox.protocol,
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        probe=IncomingProbe(mailbox.protocol),
        smtp_line=None,
    )
    session.rollback()  # no transaction open while logging in (or refreshing a token)
    network.admit(*servers_of(incoming, smtp))
    if bearer:
        incoming = with_token(app, mailbox_id, incoming)
        smtp = None if smtp is None else replace(smtp, access_token=incoming.access_token)
    with network.screening():
        probe = probe_incoming(protocol=found.protocol, settings=incoming)
        smtp_line = (
            check_smtp_settings(replace(smtp, timeout=LOGIN_TIMEOUT)) if smtp is not None else None
        )
    return replace(found, probe=probe, smtp_line=smtp_line)
