"""Syncs started by the dashboard and the API, run in daemon threads of `mailroom serve`.

A sync can take minutes, so the request only marks the mailbox `syncing` and hands the
work to a thread running the same `sync_mailbox` as the scheduler and the CLI; the page
polls the mailbox's status. At most one such sync per mailbox runs at a time in this
process (`_running`).
"""

from __future__ import annotations

import logging
import threading

from mailroom.app import App
from mailroom.sync.engine import sync_mailbox

log = logging.getLogger(__name__)
_running: set[int] = set()
_lock = threading.Lock()


def claim(mailbox_id: int) -> bool:
    """Reserve the mailbox for a background sync; False if one already runs here."""
    with _lock:
        if mailbox_id in _running:
            return False
        _running.add(mailbox_id)
        return True


def start(app: App, mailbox_id: int) -> None:
    """Run the claimed mailbox's sync in a daemon thread; the claim ends with it."""
    threading.Thread(
        target=_run, args=(app, mailbox_id), name=f"mailroom-sync-{mailbox_id}", daemon=True
    ).start()


def _run(app: App, mailbox_id: int) -> None:
    try:
        sync_mailbox(app, mailbox_id, force=True)  # an explicit request also retries "failed"
    except Exception:  # recorded on the mailbox by the engine when it can; logged here
        log.exception("sync of mailbox %s failed", mailbox_id)
    finally:
        with _lock:
            _running.discard(mailbox_id)


def running(mailbox_id: int) -> bool:
    """Whether this process is syncing the mailbox in the background."""
    with _lock:
        return mailbox_id in _running
