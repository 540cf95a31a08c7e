"""The workers' intervals, from the environment (the same on every machine of a cluster).

    MAILROOM_POLL_INTERVAL          300  seconds between two polls of a mailbox
                                         (serve's `--interval` on SQLite)
    MAILROOM_WORKER_HEARTBEAT        10  seconds between a worker's heartbeats
    MAILROOM_WORKER_STALLED_AFTER    30  a worker silent this long is dead: its jobs are
                                         retried
    MAILROOM_JOBS_TICK                5  seconds between two passes of "what is due" and
                                         stall recovery (1-59)
    MAILROOM_SYNC_BATCH               -  messages per committed batch of a worker's sync
                                         (unset: the sync's own, 200, or up to 1,000 for
                                         a fetch the fetch workers stage; sync/engine.py)

A killed worker's sync is retried within STALLED_AFTER + TICK seconds (plus the fetch by
another worker, at once on LISTEN/NOTIFY): 35 s with the defaults, under the 60 s bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mailroom.errors import ConfigError


@dataclass(frozen=True, slots=True)
class JobTimings:
    """The intervals above, in seconds."""

    poll_interval: float = 300.0
    heartbeat: float = 10.0
    stalled_after: float = 30.0
    tick: int = 5
    batch_size: int | None = None  # None: the sync engine's own batch sizes

    @property
    def tick_cron(self) -> str:
        """Procrastinate's cron (6th column: seconds) for a pass every `tick` seconds."""
        return f"* * * * * */{self.tick}"


def _number(name: str, default: float, *, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigError(
            f"{name} must be a number of seconds from {low:g} to {high:g}, not {raw!r}",
            hint=f"Unset it to use the default ({default:g}).",
        )
    return value


def _batch_size() -> int | None:
    if not os.environ.get("MAILROOM_SYNC_BATCH", "").strip():
        return None
    return int(_number("MAILROOM_SYNC_BATCH", 200, low=1, high=10000))


def load_timings() -> JobTimings:
    """The timings from `MAILROOM_*` (see the module docstring); `ConfigError` when bad."""
    heartbeat = _number("MAILROOM_WORKER_HEARTBEAT", 10.0, low=0.2, high=300)
    stalled = _number("MAILROOM_WORKER_STALLED_AFTER", 30.0, low=1, high=3600)
    if stalled < 2 * heartbeat:
        raise ConfigError(
            f"MAILROOM_WORKER_STALLED_AFTER ({stalled:g}) must be at least twice "
            f"MAILROOM_WORKER_HEARTBEAT ({heartbeat:g}), or live workers look dead",
            hint="Raise MAILROOM_WORKER_STALLED_AFTER or lower MAILROOM_WORKER_HEARTBEAT.",
        )
    return JobTimings(
        poll_interval=_number("MAILROOM_POLL_INTERVAL", 300.0, low=1, high=86400),
        heartbeat=heartbeat,
        stalled_after=stalled,
        tick=int(_number("MAILROOM_JOBS_TICK", 5, low=1, high=59)),
        batch_size=_batch_size(),
    )
