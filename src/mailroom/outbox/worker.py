"""The outbox worker run by `mailroom serve` (services.mail_services): every minute it calls
`process_due` — retries after backoff, entries abandoned by a process that died (lease
expired), unfinished logging.

Thin by design, as every worker: a thread, a stop event, one service call per tick; an error
is logged and the next tick tries again.
"""

from __future__ import annotations

import logging

from mailroom.app import App
from mailroom.outbox.delivery import process_due
from mailroom.periodic import Periodic

log = logging.getLogger(__name__)


class OutboxWorker(Periodic):
    """A daemon thread that calls `process_due(app)` every `interval` seconds."""

    thread_name = "outbox"
    failure = "outbox: processing due entries failed"
    stop_timeout = 30.0
    log = log

    def __init__(self, app: App, *, interval: float = 60.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Attempt every due entry."""
        process_due(self.app)


def start_outbox_worker(app: App, *, interval: float = 60.0) -> OutboxWorker:
    """Start an `OutboxWorker` calling `process_due` every `interval` seconds."""
    worker = OutboxWorker(app, interval=interval)
    worker.start()
    return worker
