"""The outbox worker run by `mailroom serve` (services.mail_services): every minute it calls
`process_due` — retries after backoff, entries abandoned by a process that died (lease
expired), unfinished logging.

Thin by design, as every worker: a thread, a stop event, one service call per tick; an error
is logged and the next tick tries again.
"""

from __future__ import annotations

import logging
import threading

from mailroom.app import App
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
    """Start an `OutboxWorker` calling `process_due` every `interval` seconds."""
    worker = OutboxWorker(app, interval=interval)
    worker.start()
    return worker
