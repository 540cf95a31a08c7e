"""Privacy settings and retention: how long unlinked mail is kept, and disconnecting.

Invariants:
- retention deletes only messages linked to no record and stored more than
  `retention_days` ago, and only once an admin turned it on (off by default, so a new
  prospect's mail waits under "Unmatched" until someone creates the record; per company);
  a linked message is never deleted by it; `retention_preview` counts what it would delete;
- disconnecting a mailbox either keeps everything it synced (only the mailbox, its
  cursors and its copy rows go), or also removes the messages that only it brought — a
  message also seen in another mailbox (another copy row) stays;
- both are plain service functions on a session, so the CLI, the dashboard and the
  scheduler's sweep run the very same code.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from mailroom.app import App
from mailroom.crm.access import privacy_of
from mailroom.db.engine import each_in_own_transaction
from mailroom.db.models import Company, Mailbox, Message, MessageCopy, MessageLink
from mailroom.db.web_models import VISIBILITY_MODES, CompanyPrivacy
from mailroom.errors import BadInput
from mailroom.periodic import Periodic

log = logging.getLogger(__name__)
CHUNK = 500
MAX_RETENTION_DAYS = 36500


def set_privacy(
    session: Session,
    *,
    company_id: int,
    visibility: str | None = None,
    retention_days: int | None = None,
    retention_enabled: bool | None = None,
) -> CompanyPrivacy:
    """Change the company's visibility mode and/or retention; returns the saved settings."""
    if visibility is not None and visibility not in VISIBILITY_MODES:
        raise BadInput(
            f"Unknown visibility {visibility!r}.", hint=f"Use {' or '.join(VISIBILITY_MODES)}."
        )
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise BadInput(
            f"Retention of {retention_days} days is out of range.",
            hint=f"Use a number of days from 1 to {MAX_RETENTION_DAYS}.",
        )
    row = privacy_of(session, company_id)
    if row.id is None:
        session.add(row)
    if visibility is not None:
        row.visibility = visibility
    if retention_days is not None:
        row.retention_days = retention_days
    if retention_enabled is not None:
        row.retention_enabled = retention_enabled
    session.flush()
    return row


def purge_unlinked(session: Session, *, company_id: int, now: datetime | None = None) -> int:
    """Delete the company's messages linked to no record and older than its retention."""
    settings = privacy_of(session, company_id)
    if not settings.retention_enabled:
        return 0
    ids = list(session.scalars(_unlinked_before(company_id, settings.retention_days, now)))
    return _delete_messages(session, ids)


def retention_preview(
    session: Session, *, company_id: int, days: int | None = None, now: datetime | None = None
) -> int:
    """How many messages retention would delete now with `days` (default: the saved
    period), whether or not it is on: what the settings page shows beside the switch."""
    period = days if days is not None else privacy_of(session, company_id).retention_days
    query = _unlinked_before(company_id, period, now).subquery()
    return session.scalar(select(func.count()).select_from(query)) or 0


def _unlinked_before(company_id: int, days: int, now: datetime | None) -> Select[Any]:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    return select(Message.id).where(
        Message.company_id == company_id,
        Message.created_at < cutoff,
        ~exists().where(MessageLink.message_id == Message.id),
    )


def _delete_messages(session: Session, ids: list[int]) -> int:
    for start in range(0, len(ids), CHUNK):
        session.execute(delete(Message).where(Message.id.in_(ids[start : start + CHUNK])))
    session.expire_all()
    return len(ids)


def disconnect_mailbox(session: Session, *, mailbox: Mailbox, remove_mail: bool) -> int:
    """Remove the mailbox; with `remove_mail`, also the messages no other mailbox saw.

    Returns how many messages were removed (0 when keeping everything).
    """
    removed = 0
    if remove_mail:
        other = aliased(MessageCopy)
        ids = list(
            session.scalars(
                select(MessageCopy.message_id)
                .where(MessageCopy.mailbox_id == mailbox.id)
                .where(
                    ~exists().where(
                        other.message_id == MessageCopy.message_id,
                        other.mailbox_id != mailbox.id,
                    )
                )
                .distinct()
            )
        )
        removed = _delete_messages(session, ids)
    session.execute(delete(Mailbox).where(Mailbox.id == mailbox.id))
    session.expire_all()
    return removed


def purge_all(app: App, *, now: datetime | None = None) -> dict[int, int]:
    """Run retention for every company, one short transaction each: company id → deleted."""
    with app.sessions() as session:
        companies = list(session.scalars(select(Company.id).order_by(Company.id)))
    return each_in_own_transaction(
        app.sessions,
        companies,
        lambda session, company: purge_unlinked(session, company_id=company, now=now),
    )


class RetentionSweeper(Periodic):
    """Runs `purge_all` every `interval` seconds in a daemon thread of `mailroom serve`."""

    thread_name = "mailroom-retention"
    failure = "retention sweep failed"
    stop_timeout = 10.0
    log = log

    def __init__(self, app: App, *, interval: float = 3600.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Purge every company's unlinked mail past its retention."""
        for company_id, count in purge_all(self.app).items():
            if count:
                log.info("retention: deleted %d unlinked messages of company %d", count, company_id)
