"""What `mailroom serve` runs for mail beside the web app: the drop-address SMTP receiver
and the outbox worker.

Starting both is a use case above the two sibling workflows (dropbox, outbox), which never
import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.app import App
from mailroom.dropbox.server import DropboxServer, start_dropbox_server
from mailroom.outbox.worker import OutboxWorker, start_outbox_worker


@dataclass
class MailServices:
    """What `mailroom serve` runs beside the web app: the drop receiver and the outbox."""

    dropbox: DropboxServer | None
    outbox: OutboxWorker | None  # None on PostgreSQL: the workers send (jobs/chores.py)

    def stop(self) -> None:
        """Stop the receiver (if any), then the outbox worker (if any)."""
        if self.dropbox is not None:
            self.dropbox.stop()
        if self.outbox is not None:
            self.outbox.stop()


def start_mail_services(
    app: App, *, host: str, smtp_port: int, outbox_interval: float = 60.0, outbox: bool = True
) -> MailServices:
    """Start the drop-address SMTP receiver on host:smtp_port (0: none) and, unless
    `outbox` is False (PostgreSQL: a worker's chore), the outbox worker; `stop()` the
    result when the server shuts down."""
    dropbox = start_dropbox_server(app, host, smtp_port) if smtp_port else None
    worker = start_outbox_worker(app, interval=outbox_interval) if outbox else None
    return MailServices(dropbox=dropbox, outbox=worker)
