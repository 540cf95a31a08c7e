"""What `mailroom serve` runs for mail besides the web app (`start_mail_services`): the
drop-address receiver, and the outbox worker, which every minute calls `process_due` —
retries after backoff, entries abandoned by a process that died (lease expired),
unfinished logging.

Thin by design, as every worker: a thread, a stop event, one service call per tick; an error
is logged and the next tick tries again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from mailroom.app import App
from mailroom.dropbox.server import DropboxServer, start_dropbox_server
from mailroom.outbox.delivery import process_due

log = logging.getLogger(__name__)


class OutboxWorker:
    """A daemon thread that calls `process_due(app)` every `interval` seconds."""

    def __init__(self, app: App, *, interval: float = 60.0) -> None:
        self.app = app
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                process_due(self.app)
            except Exception:
                log.exception("outbox: processing due entries failed")
            self._stop.wait(self.interval)


def start_outbox_worker(app: App, *, interval: float = 60.0) -> OutboxWorker:
    worker = OutboxWorker(app, interval=interval)
    worker.start()
    return worker


@dataclass
class MailServices:
    """What `mailroom serve` runs beside the web app: the drop receiver and the outbox."""

    dropbox: DropboxServer | None
    outbox: OutboxWorker

    def stop(self) -> None:
        if self.dropbox is not None:
            self.dropbox.stop()
        self.outbox.stop()


def start_mail_services(
    app: App, *, host: str, smtp_port: int, outbox_interval: float = 60.0
) -> MailServices:
    """Start the drop-address SMTP receiver on host:smtp_port (0: none) and the outbox
    worker; `stop()` the result when the server shuts down."""
    dropbox = start_dropbox_server(app, host, smtp_port) if smtp_port else None
    return MailServices(dropbox=dropbox, outbox=start_outbox_worker(app, interval=outbox_interval))
