"""Long runs that serve does in daemon threads on SQLite, as jobs on PostgreSQL: linking a
record's stored mail, searching the server for it, running a rule on stored mail.

Their bodies live in `services` (beside the thread that runs them on SQLite); the worker
is given them as `BackgroundTask`s (`services.workers.worker_background()`), as it is
given the chores, and registers each as the task `mailroom.<name>` on the `chores` queue.
A run is deferred with `lock = queueing_lock = <its key>`: one job per record or rule
waits at a time, and two never run at once. A killed worker's run is retried by the
stalled-job recovery (recovery.py); the bodies are idempotent and resume from the
progress they commit with each chunk (db.run_models).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate import JobContext, exceptions

from mailroom.app import App
from mailroom.jobs.queue import CHORES_QUEUE, make_queue

BACKGROUND_PRIORITY = -1  # after the tick and the chores waiting on the same queue


@dataclass(frozen=True, slots=True)
class BackgroundTask:
    """A named long run: `run(app, stop=…, resume=…, **kwargs)` does it and returns a
    one-line outcome. `stop` is set when the worker shuts down (the run then ends after
    its chunk and queues itself again with `resume`); `resume` is true for a retried job
    (a dead worker's, attempts > 0) or a handed-back one: go on from the committed
    progress rather than start again."""

    name: str
    run: Callable[..., str]

    @property
    def task_name(self) -> str:
        """The Procrastinate task name."""
        return task_name(self.name)


def task_name(name: str) -> str:
    """`mailroom.<name>`."""
    return f"mailroom.{name}"


def register_background(
    queue: procrastinate.App,
    app: App,
    tasks: tuple[BackgroundTask, ...],
    stopping: threading.Event,
) -> None:
    """Register each of `tasks` on `queue`, bound to `app` and the worker's `stopping`."""
    for each in tasks:
        _register(queue, app, each, stopping)


def _register(
    queue: procrastinate.App, app: App, each: BackgroundTask, stopping: threading.Event
) -> None:
    @queue.task(name=each.task_name, queue=CHORES_QUEUE, pass_context=True)
    def run(context: JobContext, /, resume: bool = False, **kwargs: Any) -> str:
        retried = context.job.attempts > 0  # a dead worker's job, retried by recovery.py
        return each.run(app, stop=stopping, resume=resume or retried, **kwargs)


def defer_background(app: App, *, name: str, lock: str, **kwargs: Any) -> bool:
    """Queue the run `name` with `kwargs` under `lock`; False when one already waits."""
    queue = make_queue(app, pool_size=1)
    with queue.open():
        try:
            queue.configure_task(
                task_name(name),
                queue=CHORES_QUEUE,
                lock=lock,
                queueing_lock=lock,
                priority=BACKGROUND_PRIORITY,
            ).defer(**kwargs)
        except exceptions.AlreadyEnqueued:
            return False
    return True
