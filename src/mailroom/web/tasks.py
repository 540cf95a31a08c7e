"""Work the dashboard starts and does not wait for: "Sync now".

A sync can take minutes, so the request only marks the mailbox `syncing` and hands the
work to a daemon thread running the same `sync_mailbox` as the scheduler and the CLI;
the page polls the mailbox's status. At most one web-started sync per mailbox runs at a
time in this process (`_running`).
"""

from __future__ import annotations

import logging
import threading

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.sync.engine import sync_mailbox

log = logging.getLogger(__name__)
_running: set[int] = set()
_lock = threading.Lock()


def start_sync(app: App, mailbox_id: int) -> bool:
    """Start syncing the mailbox in the background; False if one is already running."""
    with _lock:
        if mailbox_id in _running:
            return False
        _running.add(mailbox_id)
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is not None:
            mailbox.status = "syncing"
    threading.Thread(
        target=_run, args=(app, mailbox_id), name=f"mailroom-sync-{mailbox_id}", daemon=True
    ).start()
    return True


def _run(app: App, mailbox_id: int) -> None:
    try:
        sync_mailbox(app, mailbox_id, force=True)  # an explicit request also retries "failed"
    except Exception:  # recorded on the mailbox by the engine when it can; logged here
        log.exception("sync of mailbox %s failed", mailbox_id)
    finally:
        with _lock:
            _running.discard(mailbox_id)


def running(mailbox_id: int) -> bool:
    with _lock:
        return mailbox_id in _running
