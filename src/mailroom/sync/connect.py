"""Open a stored mailbox's source: log in to its IMAP or POP3 server with its credentials."""

from __future__ import annotations

from mailroom.connectors.base import MailboxSource
from mailroom.db.models import Mailbox
from mailroom.mailboxes.store import incoming_settings
from mailroom.security.secrets import SecretBox
from mailroom.sync.source import Pop3Source


def open_source(mailbox: Mailbox, secrets: SecretBox) -> MailboxSource | Pop3Source:
    """Connect and log in to the mailbox's server with its stored credentials."""
    if mailbox.protocol == "pop3":
        from mailroom.connectors.pop3 import Pop3Mailbox

        return Pop3Mailbox.connect(incoming_settings(mailbox, secrets))
    from mailroom.connectors.imap import ImapSource

    return ImapSource.connect(incoming_settings(mailbox, secrets))
