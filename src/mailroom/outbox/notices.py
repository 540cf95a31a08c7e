"""Notices: mail Mailroom itself sends to a company's people (a mailbox to reconnect, tasks
due, an alias to confirm), through the company's notice mailbox.

A notice is an ordinary outbox entry, so it is sent, retried and shown like any other; what
this module adds is the choice of mailbox and the key: `send_notice` queues a notice at most
once per company and key ("oauth_revoked:12:2026-12-01" — what, about what, which day),
enforced by a unique key in the database, so a daily reminder goes out once a day however
many processes ask. Without a notice mailbox (or with a disabled one) nothing is queued and
the caller shows the notice on the dashboard only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import NoticeSender, NoticeSent
from mailroom.errors import BadInput
from mailroom.outbox.service import SendRequest, queue_message


class NoticeOutcome(StrEnum):
    """What `send_notice` did."""

    QUEUED = "queued"
    ALREADY_SENT = "already_sent"
    NO_MAILBOX = "no_mailbox"
    NOT_QUEUED = "not_queued"  # the notice mailbox refused it (limits, a bad address)


def notice_mailbox(session: Session, *, company_id: int) -> Mailbox | None:
    """The company's notice mailbox when one is chosen, enabled and able to send."""
    sender = session.get(NoticeSender, company_id)
    if sender is None:
        return None
    mailbox = session.get(Mailbox, sender.mailbox_id)
    if mailbox is None or not mailbox.enabled:
        return None
    return mailbox


def notice_already_sent(session: Session, *, company_id: int, key: str) -> bool:
    """Whether a notice under this key was queued for the company."""
    found = session.scalar(
        select(NoticeSent.id).where(NoticeSent.company_id == company_id, NoticeSent.key == key)
    )
    return found is not None


def send_notice(
    session: Session,
    *,
    company_id: int,
    key: str,
    to: Sequence[str],
    subject: str,
    text: str,
    now: datetime | None = None,
) -> NoticeOutcome:
    """Queue one notice from the company's notice mailbox, once per key.

    Runs in the caller's transaction (a savepoint guards the key), flushed, not committed;
    the outbox worker sends it after the commit like any other entry.
    """
    if notice_already_sent(session, company_id=company_id, key=key):
        return NoticeOutcome.ALREADY_SENT
    mailbox = notice_mailbox(session, company_id=company_id)
    if mailbox is None:
        return NoticeOutcome.NO_MAILBOX
    try:
        with session.begin_nested():
            entry = queue_message(
                session,
                request=SendRequest(mailbox_id=mailbox.id, to=to, subject=subject, text=text),
                now=now,
            )
            session.add(NoticeSent(company_id=company_id, key=key, entry_id=entry.id))
            session.flush()
    except IntegrityError:
        return NoticeOutcome.ALREADY_SENT
    except BadInput:
        return NoticeOutcome.NOT_QUEUED
    return NoticeOutcome.QUEUED
