"""The serve's periodic chores, run by the workers once per period across all of them.

On SQLite `mailroom serve` runs each chore as a `Periodic` thread (web/server.py,
services/mail_services.py). On PostgreSQL the workers run the SAME classes: a periodic
Procrastinate task per chore (deduplicated by Procrastinate, so once per period whatever
the number of workers) builds the chore and calls its `tick()` once. `BASE_CHORES` are the
ones of the layers below; the worker is given the full list by `services.workers.worker_chores()`,
so a chore defined in `services` (a daily notice, a reminder) is a `Periodic` started by
serve AND one line there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailroom.app import App
from mailroom.crm.retention import RetentionSweeper
from mailroom.matching.conversations import ConversationBackfill
from mailroom.matching.index_log import IndexLogPruner
from mailroom.outbox.worker import OutboxWorker
from mailroom.periodic import Periodic


@dataclass(frozen=True, slots=True)
class Chore:
    """A named chore: how to build the serve's `Periodic` for it, and (only where the
    workers should differ from serve) how often they run it."""

    name: str
    make: Callable[[App], Periodic]
    every: float | None = None  # seconds; None: the Periodic's own interval, as in serve

    def cron(self, app: App) -> str:
        """When the workers run it, as Procrastinate's cron (a 6th column is seconds)."""
        return cron_every(self.every or self.make(app).interval)


def cron_every(interval: float) -> str:
    """A cron for "every `interval` seconds" (rounded to what cron can say)."""
    seconds = max(1, int(interval))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    if seconds < 3600:
        return f"*/{seconds // 60} * * * *"
    if seconds < 86400:
        return f"7 */{seconds // 3600} * * *"
    return "7 3 * * *"


BASE_CHORES: tuple[Chore, ...] = (
    # sends due: retries after backoff, entries abandoned by a dead process, logging
    Chore("outbox", OutboxWorker),
    # unlinked mail past the company's retention
    Chore("retention", RetentionSweeper),
    # thread mail stored before conversations existed: serve ticks every second until none
    # is left, then stops; a worker's job cannot stop its schedule, so every 10 s
    Chore("conversations", ConversationBackfill, every=10.0),
    # the record index's change log beyond what a process could still catch up from
    Chore("index-log", IndexLogPruner),
)


def chore(name: str, chores: Sequence[Chore] = BASE_CHORES) -> Chore:
    """The chore called `name` among `chores` (`KeyError` for an unknown one)."""
    return {c.name: c for c in chores}[name]
