"""Who is syncing a mailbox right now: the claim, its heartbeat, and the company's limit.

A sync first claims its mailbox in one short transaction (the row is locked with
SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers): it sets
`status = syncing`, `sync_owner` (host:pid:token) and `heartbeat_at`. Every committed batch
refreshes the heartbeat. Another sync may take the mailbox over only when the claim is
stale — the owner is a process on this host that no longer exists, or a claim of this
process that is no longer running, or the heartbeat is older than the stage timeout — so
one mailbox is never synced twice at once and a killed or stalled sync never blocks it.

The company's mailbox limit: the first `mailbox_limit` enabled, not failed mailboxes of a
company (by id) may sync; the others wait as `pending` until a slot frees.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Company, Mailbox
from mailroom.digits import is_number
from mailroom.mailboxes.status import MailboxStatus, mark_syncing
from mailroom.sync.health import aware

STAGE_TIMEOUT = timedelta(minutes=10)
HOST = socket.gethostname()
_active: set[str] = set()
_lock = threading.Lock()


def new_owner() -> str:
    """A claim token: host, process id, random suffix."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def hold(owner: str) -> None:
    """Note that this process is running the sync that owns `owner`."""
    with _lock:
        _active.add(owner)


def release(owner: str) -> None:
    with _lock:
        _active.discard(owner)


def owner_alive(owner: str) -> bool:
    """False when the owner is certainly gone; True when it may still be running."""
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != HOST or not is_number(pid_text):
        return True  # another machine: only the heartbeat can tell
    pid = int(pid_text)
    if pid == os.getpid():
        with _lock:
            return owner in _active
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(mailbox: Mailbox, *, now: datetime, timeout: timedelta = STAGE_TIMEOUT) -> bool:
    """Whether a `syncing` mailbox's claim may be taken over (see the module docstring)."""
    if mailbox.status != MailboxStatus.SYNCING or not mailbox.sync_owner:
        return True
    if not owner_alive(mailbox.sync_owner):
        return True
    beat = aware(mailbox.heartbeat_at)
    return beat is None or now - beat > timeout


def claim(
    session: Session,
    mailbox: Mailbox,
    *,
    owner: str,
    now: datetime | None = None,
    timeout: timedelta = STAGE_TIMEOUT,
) -> bool:
    """Take the mailbox for one sync; False when a live sync holds it."""
    now = now or datetime.now(UTC)
    if not is_stale(mailbox, now=now, timeout=timeout):
        return False
    mark_syncing(mailbox)
    mailbox.sync_owner = owner
    mailbox.heartbeat_at = now
    mailbox.last_attempt_at = now
    session.flush()
    return True


def lock_mailbox(session: Session, mailbox_id: int) -> Mailbox | None:
    """The mailbox row, locked for this transaction (FOR UPDATE where the database has it)."""
    return session.scalar(select(Mailbox).where(Mailbox.id == mailbox_id).with_for_update())


def within_limit(session: Session, mailbox: Mailbox) -> bool:
    """Whether the mailbox holds one of its company's slots."""
    limit = session.scalar(select(Company.mailbox_limit).where(Company.id == mailbox.company_id))
    if limit is None:
        return True
    first = session.scalars(
        select(Mailbox.id)
        .where(
            Mailbox.company_id == mailbox.company_id,
            Mailbox.enabled.is_(True),
            Mailbox.status != MailboxStatus.FAILED,
        )
        .order_by(Mailbox.id)
        .limit(max(limit, 0))
    )
    return mailbox.id in set(first)
