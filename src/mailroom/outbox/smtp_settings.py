"""Per-mailbox SMTP settings: set them, read them back as ServerSettings, test them.

The SMTP password, when the mailbox has one of its own, is encrypted at once with the
context `mailbox:<id>:smtp` (security.secrets), so it does not decrypt as the IMAP password
or in another row. Without a user name of its own, sending logs in with the mailbox's IMAP
user name (and its own password when one was given, else the IMAP password).

A stored secret is bound to the server it was entered for (issue 11):
- the SMTP password is kept only while the SMTP host and port stay the same; moving them
  drops it unless the same call gives a new one;
- the IMAP password is only ever sent to the SMTP server when that server is on the IMAP
  host itself (`same_host`): for another host, SMTP needs its own password. This is checked
  when the settings are saved and again each time they are read (`smtp_settings`), so rows
  saved before the rule cannot leak it either.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.presets import ProviderPreset, detect_preset, get_preset
from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.errors import BadInput
from mailroom.mailboxes.store import incoming_settings
from mailroom.security.secrets import SecretBox, mailbox_context

SMTP_PURPOSE = "smtp"


def same_host(one: str, other: str) -> bool:
    """Whether two host names name the same host (case and a final dot ignored)."""
    return one.strip().rstrip(".").lower() == other.strip().rstrip(".").lower()


def kept_secret(row: MailboxSmtp | None, *, host: str, port: int) -> bytes | None:
    """The stored SMTP password (used with the IMAP user name) that new settings may keep.

    Only a password entered without a user name of its own, and only while the SMTP server
    stays at the host and port it was entered for.
    """
    if row is None or row.secret is None or row.username:
        return None
    return row.secret if same_host(row.host, host) and row.port == port else None


def needs_own_password(mailbox: Mailbox, *, host: str) -> BadInput:
    """The refusal to send the mailbox's IMAP password to another host's SMTP server."""
    return BadInput(
        f"The SMTP server {host} is not the mailbox's incoming server {mailbox.host}, so "
        "Mailroom will not send the mailbox's password there.",
        hint="Give the SMTP password (and user name, if not the mailbox's) with these settings.",
    )


def set_smtp(
    session: Session,
    secrets: SecretBox,
    *,
    mailbox: Mailbox,
    host: str,
    port: int,
    security: str = "starttls",
    username: str | None = None,
    password: str | None = None,
    allow_self_signed: bool = False,
    preset: str | None = None,
    bearer: bool = False,
) -> MailboxSmtp:
    """Create or replace the mailbox's SMTP settings.

    `password` without `username`: the SMTP server's own password for the IMAP user name.
    Without either, the stored one is kept if the server did not move, else sending uses
    the IMAP password, which is only allowed on the IMAP host (`BadInput` otherwise).
    `bearer` (an OAuth mailbox): no password is ever sent, the access token goes to any of
    the provider's hosts.
    """
    host = host.strip()
    if not host or any(c.isspace() for c in host):
        raise BadInput(f"{host!r} is not a host name.")
    if not 0 < port < 65536:
        raise BadInput(f"Port {port} is out of range (1-65535).")
    try:
        sec = Security(security)
    except ValueError:
        raise BadInput(
            f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
        ) from None
    if username is not None and not username.strip():
        raise BadInput("The SMTP user name is empty.")
    if username and not password:
        raise BadInput(
            "An SMTP user name needs its password.", hint="Pipe it in with --password-stdin."
        )
    chosen = get_preset(preset) if preset else detect_preset(host)
    row = session.scalar(select(MailboxSmtp).where(MailboxSmtp.mailbox_id == mailbox.id))
    kept = None if username else kept_secret(row, host=host, port=port)
    if not bearer and password is None and kept is None and not same_host(host, mailbox.host):
        raise needs_own_password(mailbox, host=host)
    if row is None:
        row = MailboxSmtp(mailbox_id=mailbox.id, host=host, port=port)
        session.add(row)
    row.host, row.port, row.security = host, port, sec.value
    row.username = username.strip() if username else None
    row.secret = (
        secrets.encrypt(password, context=mailbox_context(mailbox.id, SMTP_PURPOSE))
        if password
        else kept
    )
    row.allow_self_signed = allow_self_signed
    row.preset = chosen.name
    session.flush()
    return row


def get_smtp(session: Session, mailbox: Mailbox) -> MailboxSmtp:
    row = session.scalar(select(MailboxSmtp).where(MailboxSmtp.mailbox_id == mailbox.id))
    if row is None:
        raise BadInput(
            f"Mailbox {mailbox.id} has no SMTP settings, so it cannot send.",
            hint=f"Set them with `mailroom mailbox smtp {mailbox.id} --host HOST --port PORT`.",
        )
    return row


def preset_of(row: MailboxSmtp) -> ProviderPreset:
    return get_preset(row.preset)


def smtp_settings(
    mailbox: Mailbox, row: MailboxSmtp, secrets: SecretBox, *, bearer: bool = False
) -> ServerSettings:
    """Where and how to send, with the password decrypted (held in memory only).

    `BadInput` rather than the IMAP password when the SMTP server is on another host.
    `bearer` (an OAuth mailbox): no password at all; the caller adds the access token
    (mailboxes/tokens.py), which the provider accepts on its SMTP host too.
    """
    if bearer:
        username, password = row.username or mailbox.username, ""
    elif row.secret is not None:
        username = row.username or mailbox.username
        password = secrets.decrypt(row.secret, context=mailbox_context(mailbox.id, SMTP_PURPOSE))
    else:
        if not same_host(row.host, mailbox.host):
            raise needs_own_password(mailbox, host=row.host)
        imap = incoming_settings(mailbox, secrets)
        username, password = imap.username, imap.password
    return ServerSettings(
        host=row.host,
        port=row.port,
        username=username,
        password=password,
        security=Security(row.security),
        allow_self_signed=row.allow_self_signed,
    )


def smtp_summary(row: MailboxSmtp) -> dict[str, object]:
    """The JSON shape of the settings (never the password)."""
    preset = preset_of(row)
    return {
        "mailbox_id": row.mailbox_id,
        "host": row.host,
        "port": row.port,
        "security": row.security,
        "username": row.username,
        "own_password": row.secret is not None,
        "allow_self_signed": row.allow_self_signed,
        "preset": preset.name,
        "limits": preset.limits.to_json(),
        "server_saves_sent": preset.server_saves_sent,
    }


def check_smtp(mailbox: Mailbox, row: MailboxSmtp, secrets: SecretBox) -> str:
    """Log in to the mailbox's stored SMTP server, send nothing; a line saying so."""
    return check_smtp_settings(smtp_settings(mailbox, row, secrets))


def check_smtp_settings(settings: ServerSettings) -> str:
    """Connect, secure and log in to the SMTP server, send nothing; a line saying so.

    For testing a mailbox (`mailroom mailbox test ID`, the settings page, the API); raises
    the connector's MailServerError on failure."""
    from mailroom.connectors.smtp import SmtpSender

    with SmtpSender.connect(settings) as sender:
        size = sender.max_size
    limit = f", messages up to {size:,} bytes" if size else ""
    return (
        f"SMTP: logged in to {settings.host}:{settings.port} ({settings.security.value}) "
        f"as {settings.username}{limit}."
    )
