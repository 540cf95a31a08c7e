"""IMAP IDLE watchers (RFC 2177): push instead of poll for INBOX and Sent.

One thread and one connection per watched folder. A watcher EXAMINEs its folder, enters
IDLE and waits; when the server pushes EXISTS, EXPUNGE or FETCH it calls `on_change`
(the scheduler then syncs the mailbox within a second), and it never fetches mail itself.
It leaves and re-enters IDLE every `refresh` seconds (default 25 minutes): RFC 2177 §3
lets a server drop a client idle for 30 minutes. A connection that fails (a kick, a
restart, a network cut) is retried with exponential backoff up to 5 minutes, and a
reconnect counts as a change, since mail may have arrived while nobody listened.
A server without IDLE ends the watcher; the mailbox is then only polled.

The watcher reads no database and writes none: which folders to watch is decided by the
scheduler (IdleManager.reconcile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mailroom.app import App
from mailroom.connectors.imap import ImapSource
from mailroom.db.models import Mailbox
from mailroom.errors import MailroomError, OAuthRevoked

log = logging.getLogger(__name__)

REFRESH = 25 * 60.0
MAX_BACKOFF = 300.0
Opener = Callable[[], ImapSource]


class IdleWatcher(threading.Thread):
    """Watch one folder of one mailbox with IDLE until stopped."""

    def __init__(
        self,
        *,
        mailbox_id: int,
        folder: str,
        opener: Opener,
        on_change: Callable[[int], None],
        refresh: float = REFRESH,
        tick: float = 1.0,
    ) -> None:
        super().__init__(name=f"mailroom-idle-{mailbox_id}-{folder}", daemon=True)
        self.mailbox_id = mailbox_id
        self.folder = folder
        self._opener = opener
        self._on_change = on_change
        self.refresh = refresh
        self.tick = tick
        self.stop_event = threading.Event()
        self.unsupported = False
        self.cycles = 0  # IDLE commands issued (one per refresh), for tests and logs
        self._source: ImapSource | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        failures = 0
        first = True
        while not self.stop_event.is_set():
            try:
                self._source = self._opener()
                if not self._source.supports("IDLE"):
                    self.unsupported = True
                    log.info("IMAP %s: no IDLE; polling only", self._source.host)
                    return
                if not first:
                    self._on_change(self.mailbox_id)  # we may have missed a push
                first, failures = False, 0
                self._watch(self._source)
            except OAuthRevoked:  # the grant is dead: a sync records it, only a sign-in helps
                log.info("IDLE %s/%s: OAuth sign-in revoked; stopped", self.mailbox_id, self.folder)
                self._on_change(self.mailbox_id)
                return
            except Exception as exc:  # a MailroomError, or a bug: backed off, never a crash
                failures += 1
                wait = min(MAX_BACKOFF, 2.0**failures)
                log.info(
                    "IDLE %s/%s: %s; again in %.0f s",
                    self.mailbox_id,
                    self.folder,
                    exc,
                    wait,
                    exc_info=not isinstance(exc, MailroomError),
                )
                first = False
                self.stop_event.wait(wait)
            finally:
                source, self._source = self._source, None
                if source is not None:
                    try:
                        source.close()
                    except MailroomError:
                        log.debug("IDLE %s: logout failed", self.mailbox_id)

    def _watch(self, source: ImapSource) -> None:
        while not self.stop_event.is_set():
            source.idle_start(self.folder)
            self.cycles += 1
            until = time.monotonic() + self.refresh
            changed = False
            while not self.stop_event.is_set() and time.monotonic() < until:
                if source.idle_wait(self.tick):
                    changed = True
                    break
            source.idle_done()
            if changed:
                self._on_change(self.mailbox_id)


def watcher_opener(app: App, mailbox: Mailbox) -> Opener:
    """Connects with the mailbox's stored credentials (decrypted at each connect)."""
    from mailroom.sync.connect import open_source

    def open_() -> ImapSource:
        source = open_source(mailbox, app)
        if not isinstance(source, ImapSource):
            source.close()
            raise TypeError("IDLE needs an IMAP mailbox")
        return source

    return open_


class IdleManager:
    """Keeps one watcher per wanted (mailbox, folder), starting and stopping as told."""

    def __init__(
        self, app: App, *, on_change: Callable[[int], None], refresh: float = REFRESH
    ) -> None:
        self.app = app
        self.on_change = on_change
        self.refresh = refresh
        self.watchers: dict[tuple[int, str], IdleWatcher] = {}

    def reconcile(self, wanted: dict[tuple[int, str], Mailbox]) -> None:
        """Start the watchers wanted and missing; stop the ones no longer wanted."""
        for key in [k for k in self.watchers if k not in wanted]:
            self.watchers.pop(key).stop()
        for key, mailbox in wanted.items():
            current = self.watchers.get(key)
            if current is not None and (current.is_alive() or current.unsupported):
                continue
            watcher = IdleWatcher(
                mailbox_id=key[0],
                folder=key[1],
                opener=watcher_opener(self.app, mailbox),
                on_change=self.on_change,
                refresh=self.refresh,
            )
            self.watchers[key] = watcher
            watcher.start()

    def stop(self, timeout: float = 5.0) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        for watcher in self.watchers.values():
            watcher.join(timeout)
        self.watchers.clear()
