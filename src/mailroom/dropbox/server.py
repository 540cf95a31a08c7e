"""The drop-address receiver run inside `mailroom serve`: SMTP from connectors, decisions here.

connectors.smtp_receiver speaks SMTP (aiosmtpd) and asks a handler two questions; this
module answers each with one dropbox.service call:

- RCPT: `service.check_recipient`: a recipient that is not a known `log+TOKEN@…` address
  is refused with 550 5.1.1 at once, so mail to a wrong or revoked token is never
  accepted; for a company that refuses strangers, an envelope sender that is not one of
  its users is refused too (550 5.7.1);
- DATA: `service.deliver`: each company's message is logged, quarantined or refused; if
  every company refused it, the answer is 550, else 250. A failure of Mailroom itself
  answers 451, so the sending server keeps the mail and tries again.

STARTTLS (RFC 3207) is offered with the drop domain's certificate (dropbox.tls), not
required (mail servers use it opportunistically).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

from mailroom.app import App
from mailroom.connectors.smtp_receiver import (
    DATA_SIZE_LIMIT,
    Refusal,
    SmtpReceiver,
    start_receiver,
)
from mailroom.dropbox import service
from mailroom.dropbox.tls import dropbox_context
from mailroom.dropbox.tokens import DOMAIN_HINT, domain_problem, drop_domain

log = logging.getLogger(__name__)

DropboxServer = SmtpReceiver


class DropboxHandler:
    """The receiver's handler: one service call per SMTP hook, with the app's database."""

    def __init__(self, app: App) -> None:
        self.app = app

    def check_recipient(self, address: str, mail_from: str) -> Refusal | None:
        """RCPT: is `address` a drop address this sender may write to?"""
        return service.check_recipient(self.app.sessions, address=address, envelope_from=mail_from)

    def receive(self, mail_from: str, recipients: Sequence[str], data: bytes) -> Refusal | None:
        """DATA: log (or quarantine, or refuse) the message for each company."""
        return service.deliver(
            self.app.sessions,
            blobs=self.app.blobs,
            envelope_from=mail_from,
            recipients=recipients,
            data=data,
        )


def start_dropbox_server(
    app: App,
    host: str,
    port: int,
    *,
    tls_context: ssl.SSLContext | None = None,
    data_size_limit: int = DATA_SIZE_LIMIT,
) -> DropboxServer:
    """Start receiving drop-address mail on host:port in a background thread."""
    name = drop_domain()
    receiver = start_receiver(
        DropboxHandler(app),
        host=host,
        port=port,
        server_hostname=name,
        tls_context=tls_context or dropbox_context(app.settings.data_dir, name),
        data_size_limit=data_size_limit,
    )
    log.info("dropbox: receiving on %s:%s for *@%s", host, port, name)
    problem = domain_problem(name)
    if problem is not None:
        log.warning("dropbox: %s. %s", problem, DOMAIN_HINT)
    return receiver
