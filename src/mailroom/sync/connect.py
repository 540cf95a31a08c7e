"""Open a stored mailbox's source: log in to its IMAP or POP3 server with its credentials.

An OAuth mailbox logs in with a current access token (mailboxes/tokens.py: refreshed before
expiry, and once more when the server refuses it)."""

from __future__ import annotations

from mailroom.app import App
from mailroom.connectors.base import MailboxSource
from mailroom.db.models import Mailbox
from mailroom.mailboxes.store import incoming_settings
from mailroom.mailboxes.tokens import connect_with_token
from mailroom.sync.source import Pop3Source


def open_source(mailbox: Mailbox, app: App) -> MailboxSource | Pop3Source:
    """Connect and log in to the mailbox's server with its stored credentials."""
    settings = incoming_settings(mailbox, app.secrets)
    if mailbox.protocol == "pop3":
        from mailroom.connectors.pop3 import Pop3Mailbox

        return connect_with_token(app, mailbox.id, settings, Pop3Mailbox.connect)
    from mailroom.connectors.imap import ImapSource

    return connect_with_token(app, mailbox.id, settings, ImapSource.connect)
