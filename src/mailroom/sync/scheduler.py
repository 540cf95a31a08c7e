"""The in-process scheduler of `mailroom serve`: poll every enabled mailbox on an interval.

A single background thread runs `sync_all`, then waits `interval` seconds or until asked
to stop. Stopping is graceful: the engine checks the stop event between batches, and every
batch commits together with its cursor, so a stop (or a crash) leaves every cursor
consistent. IDLE push and per-mailbox jobs come with the sync-engine work.
"""

from __future__ import annotations

import logging
import threading

from mailroom.app import App
from mailroom.sync.engine import sync_all

log = logging.getLogger(__name__)


class PollScheduler:
    """Runs `sync_all` every `interval` seconds in a daemon thread."""

    def __init__(self, app: App, *, interval: float) -> None:
        self.app = app
        self.interval = interval
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailroom-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                for report in sync_all(self.app, stop=self.stop_event):
                    if report.error:
                        log.warning("mailbox %s: %s", report.mailbox_id, report.error.message)
            except Exception:  # a bug must not kill the scheduler; it is logged and retried
                log.exception("sync pass failed")
            self.stop_event.wait(self.interval)
