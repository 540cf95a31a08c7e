"""`Periodic`, the loop of `mailroom serve`'s background workers (outbox, retention)."""

from __future__ import annotations

import logging
import threading

import pytest

from mailroom.periodic import Periodic


class _Ticks(Periodic):
    thread_name = "test-periodic"
    failure = "the tick failed"
    stop_timeout = 10.0
    log = logging.getLogger("test.periodic")

    def __init__(self, *, interval: float) -> None:
        self.calls = 0
        self.third = threading.Event()
        super().__init__(interval=interval)

    def tick(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("the first tick fails")
        if self.calls == 3:
            self.third.set()


def test_a_failing_tick_is_logged_and_the_next_tick_runs(caplog: pytest.LogCaptureFixture) -> None:
    worker = _Ticks(interval=0)
    worker.start()
    try:
        assert worker.third.wait(10), "ticks go on after a failure"
    finally:
        worker.stop()
    assert "the tick failed" in caplog.text
    assert not worker._thread.is_alive()


def test_stop_before_start_does_not_raise() -> None:
    worker = _Ticks(interval=60)
    worker.stop()
    assert worker.stop_event.is_set() and worker.calls == 0
