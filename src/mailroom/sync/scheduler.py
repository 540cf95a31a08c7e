"""The scheduler inside `mailroom serve`: polls, IDLE pushes, `sync --now`, stall watchdog.

One loop thread wakes every `tick` seconds (at once when an IDLE watcher reports a
change) and decides which mailboxes are due:

- a `sync --now ID` request (`Mailbox.sync_requested_at`, set by any process: the CLI
  writes the row, this loop reads it, so no restart and no socket are needed);
- a push from an IDLE watcher on INBOX or Sent (sync/idle.py);
- the poll: `interval` seconds (default 5 minutes) since the last attempt;
- a retry whose backoff (`next_attempt_at`, health.py) has elapsed;
- a `syncing` mailbox whose claim is stale (its process died or its heartbeat is older
  than the stage timeout): it is restarted, never left to stall silently.

Due mailboxes run on a small thread pool, one sync per mailbox at a time (claims.py makes
that hold across processes too). A sync of this process whose heartbeat stops for longer
than the stage timeout has its connection cut (engine.ActiveSync.abort): it fails as
`stalled` and is retried. `failed` and `disabled` mailboxes are left alone until an admin
edits or enables them. Stopping is graceful: the engine checks the stop event between
batches and every batch commits with its cursor, so every cursor stays consistent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Set
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.models import FolderState, Mailbox
from mailroom.errors import MailroomError
from mailroom.ingest import bodies
from mailroom.sync import claims, engine
from mailroom.sync.health import aware
from mailroom.sync.idle import REFRESH, IdleManager

log = logging.getLogger(__name__)

PUSH_ROLES = ("inbox", "sent", "all")  # "all": a Gmail mailbox syncs All Mail alone


class PollScheduler:
    """Keeps every enabled mailbox synced: see the module docstring."""

    def __init__(
        self,
        app: App,
        *,
        interval: float,
        workers: int = 2,
        tick: float = 1.0,
        idle: bool = True,
        idle_refresh: float = REFRESH,
        stage_timeout: timedelta = claims.STAGE_TIMEOUT,
        batch_size: int | None = None,  # None: sync_mailbox's defaults
    ) -> None:
        self.app = app
        self.interval = interval
        self.tick = tick
        self.stage_timeout = stage_timeout
        self.batch_size = batch_size
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._pushed: set[int] = set()
        self._running: dict[int, Future[engine.SyncReport]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailroom-sync")
        self._idle = IdleManager(app, on_change=self.push, refresh=idle_refresh) if idle else None
        self._thread = threading.Thread(target=self._run, name="mailroom-scheduler", daemon=True)
        self.completed: list[engine.SyncReport] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully: running syncs end after their current batch."""
        self.stop_event.set()
        self._wake.set()
        if self._idle is not None:
            self._idle.stop()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def push(self, mailbox_id: int) -> None:
        """Called by an IDLE watcher: sync this mailbox as soon as possible."""
        with self._lock:
            self._pushed.add(mailbox_id)
        self._wake.set()

    def _run(self) -> None:
        last_idle = 0.0
        while not self.stop_event.is_set():
            try:
                self._watchdog()
                for mailbox_id, forced in self.due():
                    self._submit(mailbox_id, forced)
                if self._idle is not None and time.monotonic() - last_idle > 5 * self.tick:
                    self._idle.reconcile(self.idle_wanted())
                    last_idle = time.monotonic()
            except Exception:  # a bug must not kill the scheduler; it is logged and retried
                log.exception("scheduler pass failed")
            self._wake.wait(self.tick)
            self._wake.clear()

    def _watchdog(self) -> None:
        limit = self.stage_timeout.total_seconds()
        for active in list(engine.ACTIVE.values()):
            if not active.aborted and time.monotonic() - active.beat > limit:
                log.warning("mailbox %s: sync stalled; restarting it", active.mailbox_id)
                active.abort()

    def due(self, now: datetime | None = None) -> list[tuple[int, bool]]:
        """(mailbox id, forced) of the mailboxes to sync now, not already running."""
        with self._lock:
            pushed, self._pushed = self._pushed, set()
            running = {mid for mid, fut in self._running.items() if not fut.done()}
        with self.app.sessions() as session:
            return mailboxes_due(
                session,
                now=now or datetime.now(UTC),
                interval=self.interval,
                stage_timeout=self.stage_timeout,
                running=running,
                pushed=pushed,
            )

    def idle_wanted(self) -> set[tuple[int, str]]:
        """INBOX and Sent of every healthy IMAP mailbox that has synced them once."""
        with self.app.sessions() as session:
            return idle_folders(session)

    def _submit(self, mailbox_id: int, forced: bool) -> None:
        with self._lock:
            future = self._pool.submit(self._sync, mailbox_id, forced)
            self._running[mailbox_id] = future
        future.add_done_callback(lambda done: self._failed(mailbox_id, done))

    def _failed(self, mailbox_id: int, future: Future[engine.SyncReport]) -> None:
        """Log a sync whose future raised (`_sync` already catches what it can)."""
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("mailbox %s: sync failed", mailbox_id, exc_info=exc)

    def _sync(self, mailbox_id: int, forced: bool) -> engine.SyncReport:
        try:
            report = engine.sync_mailbox(
                self.app,
                mailbox_id,
                batch_size=self.batch_size,
                stop=self.stop_event,
                force=forced,
                stage_timeout=self.stage_timeout,
            )
        except MailroomError as exc:  # e.g. the mailbox was deleted meanwhile
            report = engine.SyncReport(mailbox_id=mailbox_id, error=exc)
        except Exception as exc:
            log.exception("mailbox %s: sync failed", mailbox_id)
            report = engine.SyncReport(mailbox_id=mailbox_id, error=engine.crashed(mailbox_id, exc))
        if report.error:
            log.warning("mailbox %s: %s", mailbox_id, report.error.message)
        bodies.fill_in_background(self.app, stop=self.stop_event)  # headers-only mail
        self.completed.append(report)
        return report


def mailboxes_due(
    session: Session,
    *,
    now: datetime,
    interval: float,
    stage_timeout: timedelta = claims.STAGE_TIMEOUT,
    running: Set[int] = frozenset(),
    pushed: Set[int] = frozenset(),
) -> list[tuple[int, bool]]:
    """(mailbox id, forced) of the enabled mailboxes to sync now: the one rule of "what is
    due", used by this scheduler and by the workers' periodic task (jobs/tasks.py).

    Due: a requested sync (`sync_requested_at`, forced); a `syncing` mailbox whose claim is
    stale; a retry whose backoff has elapsed; else a poll `interval` seconds after the last
    attempt, or a push (`pushed`) when no backoff is pending. `running` ones are skipped.
    """
    result = []
    # SQL keeps only the candidates (a superset of the rule below), so a tick over
    # thousands of mailboxes loads the few that may be due, not every row
    candidate = or_(
        Mailbox.sync_requested_at.is_not(None),
        Mailbox.status == "syncing",
        Mailbox.next_attempt_at <= now,
        and_(
            Mailbox.next_attempt_at.is_(None),
            or_(
                Mailbox.last_attempt_at.is_(None),
                Mailbox.last_attempt_at <= now - timedelta(seconds=interval),
            ),
        ),
    )
    if pushed:
        candidate = or_(candidate, Mailbox.id.in_(sorted(pushed)))
    rows = session.scalars(select(Mailbox).where(Mailbox.enabled.is_(True), candidate))
    for box in rows:
        if box.id in running:
            continue
        requested = box.sync_requested_at is not None
        if box.status == "failed" and not requested:
            continue
        if box.status == "syncing":
            if claims.is_stale(box, now=now, timeout=stage_timeout):
                result.append((box.id, False))
            continue
        retry = aware(box.next_attempt_at)
        last = aware(box.last_attempt_at)
        if retry is not None:
            timely = retry <= now
        else:
            timely = last is None or (now - last).total_seconds() >= interval
        if requested or timely or (box.id in pushed and retry is None):
            result.append((box.id, requested))
    return result


def idle_folders(session: Session) -> set[tuple[int, str]]:
    """(mailbox id, folder) of INBOX and Sent of every healthy IMAP mailbox that has
    synced them once: what IDLE watches, in serve (PollScheduler) and spread over the
    workers (jobs/watch.py). Columns only: it runs every tick over every mailbox."""
    rows = session.execute(
        select(Mailbox.id, Mailbox.folders, FolderState.name)
        .join(FolderState, FolderState.mailbox_id == Mailbox.id)
        .where(
            Mailbox.enabled.is_(True),
            Mailbox.protocol == "imap",
            Mailbox.status.in_(("ok", "syncing")),
            FolderState.role.in_(PUSH_ROLES),
        )
    )
    return {
        (mailbox_id, folder)
        for mailbox_id, chosen, folder in rows
        if not chosen or folder in chosen
    }
