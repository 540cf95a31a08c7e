"""A mailbox's JSON, its error log, "sync now", enable/disable and disconnect.

(Aliases — approve, reject, confirm — are services/aliases.py.)

One JSON shape serves `mailroom mailbox list --json` and `/api/v1/mailboxes` (and the
dashboard's lists): every field either printed before, never the secret. One error-log
query serves the CLI, the page and the API: newest first (time, then id), 50 entries
unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm.access import Viewer, sharing_levels, visible_mailboxes
from mailroom.crm.retention import disconnect_mailbox as remove_mailbox
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Mailbox, MailboxError
from mailroom.mailboxes.status import MailboxStatus, mark_syncing
from mailroom.mailboxes.store import list_mailboxes, request_sync, set_enabled
from mailroom.services import background
from mailroom.services.aliases import AliasView, alias_views
from mailroom.services.lookup import load_mailbox
from mailroom.services.quarantine import quarantine_counts
from mailroom.services.workers import claim_process
from mailroom.sync.health import name_mailbox

if TYPE_CHECKING:
    from mailroom.jobs.status import MailboxJobs

ERROR_LOG_PAGE = 50

STATUS_WORDS: dict[str, str] = {
    MailboxStatus.OK: "OK",
    MailboxStatus.PENDING: "Waiting for the first sync",
    MailboxStatus.SYNCING: "Syncing",
    MailboxStatus.ERROR: "Error",
    MailboxStatus.DISABLED: "Disabled",
    MailboxStatus.FAILED: "Stopped: needs your fix",
    MailboxStatus.PAUSED: "Paused: Gmail's daily download limit",
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def last_hint(session: Session, mailbox: Mailbox) -> str | None:
    """How to fix the mailbox's last error (the sync engine's hint, else the error log's)."""
    if mailbox.status not in (MailboxStatus.ERROR, MailboxStatus.PAUSED) and not mailbox.last_error:
        return None
    hint = mailbox.error_hint or session.scalar(
        select(MailboxError.hint)
        .where(MailboxError.mailbox_id == mailbox.id)
        .order_by(MailboxError.id.desc())
        .limit(1)
    )
    # Hints stored before they named their mailbox say `ID`: name it when shown.
    return name_mailbox(str(hint), mailbox.id) if hint else None


def _one(
    mailbox: Mailbox,
    *,
    hint: str | None,
    sharing: str,
    quarantined: int,
    aliases: list[AliasView],
    queue: QueueView,
) -> dict[str, Any]:
    status = str(mailbox.status)
    words = STATUS_WORDS.get(status, status)
    if status == MailboxStatus.PAUSED and mailbox.next_attempt_at is not None:
        words += f"; resumes at {mailbox.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    held = queue.held.get(mailbox.id)
    return {
        "id": mailbox.id,
        "address": mailbox.address,
        "name": mailbox.address,
        "user_id": mailbox.user_id,
        "company_id": mailbox.company_id,
        "protocol": mailbox.protocol,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "aliases": [a.address for a in mailbox.aliases],
        "pending_aliases": [a.address for a in mailbox.aliases if not a.approved],
        "alias_states": [
            {"address": a.address, "state": a.state, "words": a.words} for a in aliases
        ],
        "folders": list(mailbox.folders),
        "status": status,
        "status_words": words,
        "last_error": mailbox.last_error,
        "last_success_at": _iso(mailbox.last_success_at),
        "enabled": mailbox.enabled,
        "error_kind": mailbox.error_kind,
        "auth_failures": mailbox.auth_failure_count,
        "hint": hint,
        "next_attempt_at": _iso(mailbox.next_attempt_at),
        "since": _iso(mailbox.since_date),
        "delete_after_fetch": mailbox.delete_after_fetch,
        "sharing": sharing,
        "quarantined": quarantined,
        "progress": {
            "done": mailbox.progress_done,
            "total": mailbox.progress_total,
            "done_bytes": mailbox.progress_done_bytes,
            "total_bytes": mailbox.progress_total_bytes,
        },
        # who syncs it: the claim's process (host:pid), on PostgreSQL also the worker's id
        "worker": claim_process(mailbox.sync_owner) if status == "syncing" else None,
        "worker_id": held.worker_id if held is not None else None,
        "queued": held is not None and held.queued,  # a sync waits in the queue (PostgreSQL)
        "queue_depth": queue.depth,  # syncs waiting, all mailboxes (PostgreSQL; else None)
    }


@dataclass(frozen=True)
class QueueView:
    """The job queue as the mailbox JSON shows it (empty on SQLite: no queue there)."""

    held: dict[int, MailboxJobs] = field(default_factory=dict)
    depth: int | None = None


def queue_view(session: Session) -> QueueView:
    """PostgreSQL: each mailbox's running or waiting sync job and the sync queue's depth."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return QueueView()
    from mailroom.jobs.status import mailbox_jobs, queue_depth

    return QueueView(held=mailbox_jobs(session), depth=queue_depth(session).get("sync", 0))


def mailbox_json(*, session: Session, mailboxes: Sequence[Mailbox]) -> list[dict[str, Any]]:
    """The mailboxes in the one JSON shape of the CLI and the API (never the secret)."""
    shared = sharing_levels(session, (m.id for m in mailboxes))
    quarantined = quarantine_counts(session, [m.id for m in mailboxes])
    queue = queue_view(session)
    return [
        _one(
            m,
            hint=last_hint(session, m),
            sharing=shared[m.id],
            quarantined=quarantined.get(m.id, 0),
            aliases=alias_views(session, mailbox=m),
            queue=queue,
        )
        for m in mailboxes
    ]


def list_mailbox_json(
    *, session: Session, viewer: Viewer | None = None, company: Company | None = None
) -> list[dict[str, Any]]:
    """The mailboxes a viewer may manage (web), or all / one company's (CLI), as JSON."""
    if viewer is not None:
        boxes = visible_mailboxes(session, viewer=viewer)
    else:
        boxes = list_mailboxes(session, company=company)
    return mailbox_json(session=session, mailboxes=boxes)


def get_mailbox_json(
    *, session: Session, mailbox_id: int, viewer: Viewer | None = None
) -> dict[str, Any]:
    """One mailbox as JSON (for a viewer: only one they may manage)."""
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    return mailbox_json(session=session, mailboxes=[mailbox])[0]


def error_log(
    *,
    session: Session,
    mailbox_id: int,
    viewer: Viewer | None = None,
    limit: int = ERROR_LOG_PAGE,
) -> list[dict[str, Any]]:
    """The mailbox's logged sync errors, newest first, each with its fix."""
    load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    rows = session.scalars(
        select(MailboxError)
        .where(MailboxError.mailbox_id == mailbox_id)
        .order_by(MailboxError.at.desc(), MailboxError.id.desc())
        .limit(limit)
    )
    return [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "message": e.message,
            "hint": name_mailbox(e.hint, mailbox_id) if e.hint else e.hint,
            "user_fixable": e.user_fixable,
            "retry_at": _iso(e.retry_at),
        }
        for e in rows
    ]


def sync_now(
    *, session: Session, app: App, mailbox_id: int, viewer: Viewer | None = None, here: bool
) -> bool:
    """Sync the mailbox now; False when this process already syncs it.

    `here` (the dashboard and API, which run inside `mailroom serve`): start the sync in a
    background thread of this process. Otherwise (the CLI): ask the running
    `mailroom serve` to start it, which its scheduler does within 2 seconds. On
    PostgreSQL (every interface): queue it at high priority for the workers.
    """
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    if not app.settings.is_sqlite:  # PostgreSQL: a worker runs it, queued at high priority
        session.rollback()
        from mailroom.jobs.queue import request_sync_now

        request_sync_now(app, mailbox_id=mailbox_id)
        return True
    if not here:
        request_sync(session, mailbox)
        session.commit()
        return True
    session.rollback()  # end this transaction (SQLite: its lock) before the sync writes
    if not background.claim(mailbox_id):
        return False
    with transaction(app.sessions) as marking:
        row = marking.get(Mailbox, mailbox_id)
        if row is not None:
            mark_syncing(row)
    background.start(app, mailbox_id)
    return True


def enable_mailbox(
    *, session: Session, mailbox_id: int, enabled: bool, viewer: Viewer | None = None
) -> None:
    """Enable (pending, synced at once) or disable (never synced, frees a limit slot)."""
    set_enabled(load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer), enabled)
    session.commit()


def disconnect(
    *, session: Session, mailbox_id: int, remove_mail: bool, viewer: Viewer | None = None
) -> int:
    """Remove the mailbox (and, with `remove_mail`, mail no other mailbox saw); committed.

    Returns how many messages were removed.
    """
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    removed = remove_mailbox(session, mailbox=mailbox, remove_mail=remove_mail)
    session.commit()
    return removed
