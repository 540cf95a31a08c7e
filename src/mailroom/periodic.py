"""A daemon thread that calls one function every `interval` seconds until it is stopped.

The shape of `mailroom serve`'s background workers (the outbox worker, the retention
sweeper): a thread, a stop event, one call per tick; an error is logged and the next tick
tries again.
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar


class Periodic:
    """Calls `tick()` every `interval` seconds in a daemon thread, until stopped.

    A subclass names its thread (`thread_name`), says what to log when a tick fails
    (`failure`, on its module's `log`), how long `stop` waits (`stop_timeout`), and ticks.
    """

    thread_name: ClassVar[str]
    failure: ClassVar[str]
    stop_timeout: ClassVar[float]
    log: ClassVar[logging.Logger]

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def tick(self) -> None:
        """One round of work."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the daemon thread."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for it (up to `timeout`, else `stop_timeout`)."""
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(self.stop_timeout if timeout is None else timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.tick()
            except Exception:  # logged; the next tick tries again
                self.log.exception(self.failure)
            self.stop_event.wait(self.interval)
