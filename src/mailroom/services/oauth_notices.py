"""The daily reminder for a mailbox whose OAuth grant died (`oauth_revoked`, issue 12 §3).

While a mailbox is `oauth_revoked` (and not disabled on purpose), its owner and the
company's admins get one notice mail a day (outbox.notices, key
`oauth_revoked:<mailbox id>:<UTC date>`, so one per mailbox per day however many
processes or ticks ask) until someone signs it in again. The dashboard shows the banner at
once; this mail reaches people who do not look. It never touches the mailbox's failure
counters (the 48-hour auto-disable is sync.health's, and a dead grant never counts as a
wrong password). `RevokedNotices` runs it in `mailroom serve` every `interval` seconds.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, User
from mailroom.outbox.notices import NoticeOutcome, send_notice
from mailroom.periodic import Periodic

log = logging.getLogger(__name__)
REVOKED = "oauth_revoked"


def revoked_key(mailbox_id: int, day: date) -> str:
    """The notice key of one mailbox's reminder on one day."""
    return f"{REVOKED}:{mailbox_id}:{day.isoformat()}"


def notify_revoked(app: App, *, now: datetime | None = None) -> dict[int, NoticeOutcome]:
    """Queue today's reminder for every `oauth_revoked` mailbox (one short transaction
    each); mailbox id → what `send_notice` did."""
    moment = now or datetime.now(UTC)
    with app.sessions() as session:
        ids = list(
            session.scalars(
                select(Mailbox.id)
                .where(Mailbox.error_kind == REVOKED, Mailbox.enabled.is_(True))
                .order_by(Mailbox.id)
            )
        )
    done = {}
    for mailbox_id in ids:
        with transaction(app.sessions) as session:
            mailbox = session.get(Mailbox, mailbox_id)
            if mailbox is None or mailbox.error_kind != REVOKED:
                continue
            done[mailbox_id] = send_notice(
                session,
                company_id=mailbox.company_id,
                key=revoked_key(mailbox_id, moment.date()),
                to=_recipients(session, mailbox),
                subject=f"Mailroom: sign in again to keep syncing {mailbox.address}",
                text=_text(app, mailbox),
                now=moment,
            )
    return done


def _recipients(session: Session, mailbox: Mailbox) -> list[str]:
    owner = session.get(User, mailbox.user_id)
    admins = session.scalars(
        select(User.email)
        .where(User.company_id == mailbox.company_id, User.role == "admin")
        .order_by(User.id)
    )
    found = [owner.email] if owner is not None else []
    found += [a for a in admins if a not in found]
    return found


def _text(app: App, mailbox: Mailbox) -> str:
    return (
        f"Mailroom can no longer read {mailbox.address}: the provider refused its sign-in "
        "(the access was revoked, the password changed, or a policy ended it).\n\n"
        f"Nothing is synced or sent through it until its owner signs in again: open "
        f"{app.settings.public_url}/mailboxes and click Reconnect.\n\n"
        "This reminder is sent once a day until the mailbox is reconnected.\n"
    )


class RevokedNotices(Periodic):
    """Runs `notify_revoked` every `interval` seconds in a daemon thread of `serve`."""

    thread_name = "mailroom-revoked-notices"
    failure = "revoked-mailbox notices failed"
    stop_timeout = 10.0
    log = log

    def __init__(self, app: App, *, interval: float = 900.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Queue today's reminders (each at most once a day)."""
        queued = [k for k, v in notify_revoked(self.app).items() if v == NoticeOutcome.QUEUED]
        if queued:
            log.info("reminded the owners of %d revoked OAuth mailboxes", len(queued))
