"""IDLE push on the workers: the watched folders spread over the live workers.

What is watched is what serve watches (`sync.scheduler.idle_folders`: INBOX and Sent of
every healthy IMAP mailbox), with serve's watchers (`sync.idle.IdleManager`: a connection
per folder, all waiting in one selector thread). Which worker watches a mailbox:
rendezvous hashing of the mailbox id over the live workers that watch (a heartbeat within
`stalled_after`, and a row in `idle_watchers`: a worker serving only `chores` watches
nothing and is given nothing), recomputed every tick by each worker on its own, with no
coordination.
When a worker dies, it drops out of the live set within `stalled_after` seconds and its
mailboxes hash to the others at their next tick; when one joins, about 1/N of the
mailboxes move to it. During such a change two workers may watch one mailbox for a tick:
harmless, watching is read-only, and a push only queues a sync (its queueing lock makes
two pushes one job).

A push (EXISTS, EXPUNGE, FETCH, or a reconnect) queues a sync of the mailbox at `PUSH`
priority, from the watcher's thread onto the worker's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Collection, Sequence

import procrastinate
from procrastinate.worker import Worker
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import utcnow
from mailroom.db.run_models import IdleWatcher
from mailroom.jobs.queue import PUSH, defer_sync_async
from mailroom.jobs.timing import JobTimings
from mailroom.sync.idle import REFRESH, IdleManager
from mailroom.sync.scheduler import idle_folders

log = logging.getLogger(__name__)


def owner_of(mailbox_id: int, workers: Sequence[int]) -> int:
    """The worker (of `workers`, not empty) that watches the mailbox: rendezvous hashing."""
    return max(
        workers,
        key=lambda w: hashlib.blake2b(f"{mailbox_id}:{w}".encode(), digest_size=8).digest(),
    )


def share(
    wanted: Collection[tuple[int, str]], workers: Sequence[int], me: int
) -> set[tuple[int, str]]:
    """The part of `wanted` that worker `me` watches."""
    return {key for key in wanted if owner_of(key[0], workers) == me}


def register_watcher(session: Session, *, worker_id: int, process: str) -> None:
    """Count `worker_id` among the watching workers (idempotent), and forget the rows of
    workers Procrastinate no longer knows."""
    session.execute(
        text(
            "INSERT INTO idle_watchers (worker_id, process, since) VALUES (:id, :process, :now) "
            "ON CONFLICT (worker_id) DO NOTHING"
        ),
        {"id": worker_id, "process": process, "now": utcnow()},
    )
    session.execute(
        text(
            "DELETE FROM idle_watchers "
            "WHERE worker_id NOT IN (SELECT id FROM procrastinate_workers)"
        )
    )


def live_watchers(session: Session, *, stalled_after: float) -> list[int]:
    """The watching workers with a heartbeat within `stalled_after` seconds."""
    rows = session.execute(
        text(
            "SELECT w.id FROM procrastinate_workers w "
            "JOIN idle_watchers i ON i.worker_id = w.id "
            "WHERE w.last_heartbeat >= now() - make_interval(secs => :stalled)"
        ),
        {"stalled": stalled_after},
    )
    return sorted(int(worker_id) for (worker_id,) in rows)


class Watch:
    """One worker's IDLE watchers, reconciled with its share every tick."""

    def __init__(self, app: App, queue: procrastinate.App, timings: JobTimings) -> None:
        self.app = app
        self.queue = queue
        self.timings = timings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self.manager = IdleManager(app, on_change=self.push, refresh=REFRESH)

    def push(self, mailbox_id: int) -> None:
        """A watcher saw a change (its thread): queue a sync on the worker's loop."""
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._push(mailbox_id), self.loop)

    async def _push(self, mailbox_id: int) -> None:
        try:
            await defer_sync_async(self.queue, mailbox_id=mailbox_id, forced=False, priority=PUSH)
        except Exception:  # logged; the poll still comes
            log.exception("mailbox %s: queueing the pushed sync failed", mailbox_id)

    def reconcile(self, me: int) -> int:
        """Watch this worker's share now; how many folders that is."""
        with self.app.sessions() as session:
            live = live_watchers(session, stalled_after=self.timings.stalled_after)
            wanted = idle_folders(session)
        if me not in live:  # first tick (or its row lost): a write only then, not per tick
            with transaction(self.app.sessions) as session:
                register_watcher(session, worker_id=me, process=self.process)
        mine = share(wanted, sorted({*live, me}), me)
        if set(mine) != set(self.manager.watchers):
            log.info("worker %s (%s): watching %d folders", me, self.process, len(mine))
        self.manager.reconcile(mine)
        return len(mine)

    async def run(self, worker: Worker, stopped: asyncio.Event) -> None:
        """Reconcile every tick while the worker runs; stop every watcher at the end."""
        self.loop = asyncio.get_running_loop()
        try:
            while not stopped.is_set():
                if worker.worker_id is not None:
                    try:
                        await asyncio.to_thread(self.reconcile, worker.worker_id)
                    except Exception:  # a bug or a database hiccup: logged, next tick retries
                        log.exception("IDLE: reconciling the watched folders failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), timeout=self.timings.tick)
        finally:
            await asyncio.to_thread(self.manager.stop)
            if worker.worker_id is not None:
                await asyncio.to_thread(self._unregister, worker.worker_id)

    def _unregister(self, me: int) -> None:
        try:
            with transaction(self.app.sessions) as session:
                session.execute(delete(IdleWatcher).where(IdleWatcher.worker_id == me))
        except Exception:  # its heartbeat stops anyway: the others stop counting it
            log.exception("IDLE: removing worker %s from the watchers failed", me)
