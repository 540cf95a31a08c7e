"""IMAP IDLE watchers (RFC 2177): push instead of poll for the watched folders.

One process may watch thousands of folders (a worker watches 1,000 mailboxes, INBOX and
Sent each: issue 14), so a watched folder is not a thread (decision 0031). Every IDLE
connection waits in one selector thread (`IdleHub`); only the short blocking steps run on
a small thread pool: connect and log in, EXAMINE and IDLE, read what a readable
connection pushed, DONE and IDLE again. The pool also bounds how many connections are
being opened at once, so a worker's start is not a storm of thousands of TLS handshakes.

A watched folder is EXAMINEd and put in IDLE; when the server pushes EXISTS, EXPUNGE,
FETCH or VANISHED, `on_change(mailbox_id)` is called (the scheduler or a worker then syncs
the mailbox) and the watcher never fetches mail itself. Every `refresh` seconds (default
25 minutes) it leaves and re-enters IDLE: RFC 2177 §3 lets a server drop a client idle for
30 minutes. A connection that reads as readable but yields no response is probed the same
way (a dead peer then fails the DONE). A failure (a kick, a restart, a network cut) is
retried with exponential backoff up to 5 minutes, and a reconnect counts as a change,
since mail may have arrived while nobody listened. A server without IDLE ends the watch;
the mailbox is then only polled. A revoked OAuth grant ends it after one change (the sync
records `oauth_revoked`; only a sign-in helps).

The watchers read no database and write none: which folders to watch is decided by the
scheduler or the worker (`IdleManager.reconcile`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from mailroom.app import App
from mailroom.connectors.imap import ImapSource
from mailroom.db.models import Mailbox
from mailroom.errors import MailroomError, OAuthRevoked

log = logging.getLogger(__name__)

REFRESH = 25 * 60.0
FIRST_BACKOFF = 2.0
MAX_BACKOFF = 300.0
POOL_SIZE = 32
Opener = Callable[[], ImapSource]
Key = tuple[int, str]
_Message = tuple[str, "WatchedFolder | None", float]  # what, which folder, after a delay
_JOB_ENDS = frozenset({"open", "idling", "ended", "closed"})  # what a pool job posts last


class WatchState(Enum):
    """Where a watched folder is: what the hub waits for next."""

    CONNECTING = "connecting"  # a pool thread opens it (or will, after a backoff)
    IDLING = "idling"  # in IDLE, its socket in the selector
    BUSY = "busy"  # a pool thread reads its pushes or renews its IDLE
    ENDED = "ended"  # no IDLE on the server, or the OAuth grant is revoked
    STOPPED = "stopped"  # no longer wanted


@dataclass(eq=False)
class WatchedFolder:
    """One folder watched with IDLE; its fields are only changed by the job that owns it."""

    mailbox_id: int
    folder: str
    opener: Opener
    state: WatchState = WatchState.CONNECTING
    source: ImapSource | None = None
    unsupported: bool = False
    cycles: int = 0  # IDLE commands issued (one per refresh), for tests and logs
    failures: int = 0
    connected_once: bool = False
    refresh_at: float = 0.0
    in_idle: bool = False
    seen: tuple[object, ...] | None = None  # the folder's EXAMINE state at the last IDLE
    epoch: int = 0  # bumped whenever the folder enters or leaves the selector
    busy: bool = False  # a pool job owns it (set and cleared by the hub's thread only)

    @property
    def key(self) -> Key:
        return (self.mailbox_id, self.folder)

    @property
    def alive(self) -> bool:
        """Watching, or about to be (not ended, not stopped)."""
        return self.state not in (WatchState.ENDED, WatchState.STOPPED)


class IdleHub:
    """Watches folders with IDLE: one selector thread and a bounded pool of workers.

    `watch(key, opener)` and `unwatch(key)` may be called from any thread. All selector
    and timer state is touched by the hub's own thread only; the pool's jobs hand their
    results back to it through a queue (and a self-pipe that wakes the selector).
    """

    def __init__(
        self,
        *,
        on_change: Callable[[int], None],
        refresh: float = REFRESH,
        pool_size: int = POOL_SIZE,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        name: str = "mailroom-idle",
    ) -> None:
        self.on_change = on_change
        self.refresh = refresh
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.folders: dict[Key, WatchedFolder] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._inbox: queue.SimpleQueue[tuple[str, WatchedFolder | None, float]] = (
            queue.SimpleQueue()
        )
        self._timers: list[tuple[float, int, int, str, WatchedFolder]] = []
        self._order = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"{name}-io")
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- any thread ---------------------------------------------------------------------

    def watch(self, key: Key, opener: Opener) -> WatchedFolder:
        """Start watching `key` (a no-op if it is watched already and alive)."""
        with self._lock:
            current = self.folders.get(key)
            if current is not None and (current.alive or current.unsupported):
                return current
            watched = WatchedFolder(mailbox_id=key[0], folder=key[1], opener=opener)
            self.folders[key] = watched
        self._post("open", watched)
        return watched

    def unwatch(self, key: Key) -> None:
        """Stop watching `key`: its connection is closed (LOGOUT) by the pool."""
        with self._lock:
            watched = self.folders.pop(key, None)
        if watched is not None:
            self._post("stop", watched)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every watch and the hub; waits up to `timeout` s for the logouts."""
        with self._lock:
            watched, self.folders = list(self.folders.values()), {}
        for folder in watched:
            self._post("stop", folder)
        self._post("close", None)
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)
        # the LOGOUTs run on the pool: wait for them, but not past the deadline
        waiter = threading.Thread(target=self._pool.shutdown, daemon=True)
        waiter.start()
        waiter.join(max(0.0, deadline - time.monotonic()))

    def _post(self, what: str, watched: WatchedFolder | None, delay: float = 0.0) -> None:
        self._inbox.put((what, watched, delay))
        with contextlib.suppress(OSError):  # full (the hub wakes anyway), or closed at the end
            self._wake_w.send(b"\0")

    # -- the hub's thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing:
                try:
                    self._turn()
                except Exception:  # a bug: logged, and the hub goes on with the others
                    log.exception("IDLE hub: a turn of the loop failed")
                    time.sleep(0.1)
        finally:
            for key in list(self._selector.get_map().values()):
                if key.data is not None:
                    self._submit(self._close, key.data)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _turn(self) -> None:
        """Wait for a readable connection, a message or a timer; act on each."""
        for key, _ in self._selector.select(self._next_timeout()):
            if key.data is None:
                self._drain_wake()
                continue
            watched: WatchedFolder = key.data
            self._leave_selector(watched)
            self._submit(self._read, watched)
        self._handle_inbox()
        self._fire_timers()

    def _next_timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._wake_r.recv(4096):
                pass

    def _handle_inbox(self) -> None:
        while True:
            try:
                what, watched, delay = self._inbox.get_nowait()
            except queue.Empty:
                return
            if watched is None:  # "close": the hub ends
                self._closing = True
                continue
            if what in _JOB_ENDS:
                watched.busy = False
            if what == "stop":
                if watched.state is WatchState.IDLING:
                    self._leave_selector(watched)
                watched.state = WatchState.STOPPED
                if not watched.busy:  # else the running job's end closes it
                    self._submit(self._close, watched)
            elif what == "closed":
                pass
            elif watched.state is WatchState.STOPPED:
                self._submit(self._close, watched)
            elif what == "open":
                watched.state = WatchState.CONNECTING
                if delay > 0:
                    self._later(delay, "open", watched)
                else:
                    self._submit(self._open, watched)
            elif what == "idling":
                self._enter_selector(watched)
            elif what == "ended":
                watched.state = WatchState.ENDED

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, epoch, what, watched = heapq.heappop(self._timers)
            if watched.busy or epoch != watched.epoch:
                continue  # stale: the folder moved on since this timer was set
            if what == "refresh" and watched.state is WatchState.IDLING:
                self._leave_selector(watched)
                self._submit(self._renew, watched)
            elif what == "open" and watched.state is WatchState.CONNECTING:
                self._submit(self._open, watched)

    def _later(self, delay: float, what: str, watched: WatchedFolder) -> None:
        when = time.monotonic() + delay
        heapq.heappush(self._timers, (when, next(self._order), watched.epoch, what, watched))

    def _enter_selector(self, watched: WatchedFolder) -> None:
        source = watched.source
        sock = source.wire() if source is not None else None
        if sock is None:  # closed meanwhile: open again
            watched.state = WatchState.CONNECTING
            self._submit(self._open, watched)
            return
        try:
            self._selector.register(sock, selectors.EVENT_READ, watched)
        except (ValueError, KeyError, OSError) as exc:  # closed under us: connect again
            log.info("IDLE %s/%s: cannot wait on the connection (%s)", *watched.key, exc)
            watched.state = WatchState.CONNECTING
            self._submit(self._reopen, watched)
            return
        watched.epoch += 1
        watched.state = WatchState.IDLING
        self._later(max(0.0, watched.refresh_at - time.monotonic()), "refresh", watched)

    def _leave_selector(self, watched: WatchedFolder) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data is watched:
                self._selector.unregister(key.fileobj)
        watched.epoch += 1
        watched.state = WatchState.BUSY

    def _submit(self, job: Callable[[WatchedFolder], str], watched: WatchedFolder) -> None:
        watched.busy = True
        try:
            self._pool.submit(self._guarded, job, watched)
        except RuntimeError:  # the pool is shut down: the hub is stopping
            watched.busy = False

    # -- the pool's jobs: at most one at a time per folder; each ends with a message ----

    def _guarded(self, job: Callable[[WatchedFolder], str], watched: WatchedFolder) -> None:
        delay = 0.0
        try:
            outcome = job(watched)
        except OAuthRevoked:  # the grant is dead: a sync records it, only a sign-in helps
            log.info("IDLE %s/%s: OAuth sign-in revoked; stopped", *watched.key)
            self._drop_source(watched)
            self._changed(watched)
            outcome = "ended"
        except Exception as exc:  # a MailroomError, or a bug: backed off, never a crash
            self._drop_source(watched)
            watched.failures += 1
            delay = min(self.max_backoff, self.first_backoff * 2.0 ** (watched.failures - 1))
            delay *= random.uniform(0.8, 1.0)  # a restarted server is not hit by all at once
            log.info(
                "IDLE %s/%s: %s; again in %.0f s",
                *watched.key,
                exc,
                delay,
                exc_info=not isinstance(exc, MailroomError),
            )
            outcome = "open"
        self._post(outcome, watched, delay)

    def _open(self, watched: WatchedFolder) -> str:
        source = watched.opener()
        watched.source = source
        if not source.supports("IDLE"):
            watched.unsupported = True
            log.info("IMAP %s: no IDLE; polling only", source.host)
            self._drop_source(watched)
            return "ended"
        if watched.connected_once:
            self._changed(watched)  # we may have missed a push while disconnected
        watched.connected_once = True
        return self._start_idle(watched, source)

    def _reopen(self, watched: WatchedFolder) -> str:
        self._drop_source(watched)
        return self._open(watched)

    def _read(self, watched: WatchedFolder) -> str:
        source = self._require(watched)
        changed = source.idle_pushes()
        if changed is None:  # readable, but nothing: a closed peer, or a TLS record
            return self._renew(watched)
        if changed:
            self._changed(watched)
        return "idling"

    def _renew(self, watched: WatchedFolder) -> str:
        source = self._require(watched)
        watched.in_idle = False
        if source.idle_done():
            self._changed(watched)
        return self._start_idle(watched, source)

    def _close(self, watched: WatchedFolder) -> str:
        source = watched.source
        if source is not None and watched.in_idle:
            watched.in_idle = False
            try:
                source.idle_done()
            except MailroomError:
                log.debug("IDLE %s: DONE before LOGOUT failed", watched.mailbox_id)
        self._drop_source(watched)
        return "closed"

    def _start_idle(self, watched: WatchedFolder, source: ImapSource) -> str:
        status = source.idle_start(watched.folder)
        state = (status.uidvalidity, status.uidnext, status.messages, status.highestmodseq)
        if watched.seen is not None and state != watched.seen:
            self._changed(watched)  # changed between DONE and this IDLE: no push came
        watched.seen = state
        watched.in_idle = True
        watched.cycles += 1
        watched.failures = 0
        watched.refresh_at = time.monotonic() + self.refresh
        return "idling"

    def _require(self, watched: WatchedFolder) -> ImapSource:
        if watched.source is None:
            raise MailroomError("the IDLE connection is gone")
        return watched.source

    def _changed(self, watched: WatchedFolder) -> None:
        try:
            self.on_change(watched.mailbox_id)
        except Exception:  # the listener's bug must not end the watch
            log.exception("IDLE %s/%s: the change listener failed", *watched.key)

    def _drop_source(self, watched: WatchedFolder) -> None:
        source, watched.source = watched.source, None
        watched.in_idle = False
        if source is None:
            return
        try:
            source.close()
        except MailroomError:
            log.debug("IDLE %s: logout failed", watched.mailbox_id)


def watcher_opener(app: App, mailbox_id: int) -> Opener:
    """Connects with the mailbox's stored credentials, read afresh at each connect (a
    changed password or a refreshed token is used by the next reconnect)."""
    from mailroom.sync.connect import open_source

    def open_() -> ImapSource:
        with app.sessions() as session:
            mailbox = session.get(Mailbox, mailbox_id)
            if mailbox is None:
                raise MailroomError(f"Mailbox {mailbox_id} no longer exists")
            session.expunge(mailbox)
        source = open_source(mailbox, app)  # no transaction is open during the login
        if not isinstance(source, ImapSource):
            source.close()
            raise TypeError("IDLE needs an IMAP mailbox")
        return source

    return open_


class IdleManager:
    """Keeps one watch per wanted (mailbox, folder) on an `IdleHub`, as told."""

    def __init__(
        self,
        app: App,
        *,
        on_change: Callable[[int], None],
        refresh: float = REFRESH,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.app = app
        self.hub = IdleHub(on_change=on_change, refresh=refresh, pool_size=pool_size)

    @property
    def watchers(self) -> dict[Key, WatchedFolder]:
        """The watched folders by (mailbox id, folder)."""
        return self.hub.folders

    def reconcile(self, wanted: Collection[Key]) -> None:
        """Start the watches wanted and missing; stop the ones no longer wanted."""
        for key in [k for k in self.hub.folders if k not in wanted]:
            self.hub.unwatch(key)
        for key in wanted:
            current = self.hub.folders.get(key)
            if current is not None and (current.alive or current.unsupported):
                continue
            self.hub.watch(key, watcher_opener(self.app, key[0]))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every watch (LOGOUT) and the hub."""
        self.hub.stop(timeout)
