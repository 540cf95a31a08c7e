"""Use case: choose the mailbox a company's notices are sent from (outbox.notices)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import MailboxSmtp, NoticeSender
from mailroom.errors import NotFound
from mailroom.outbox.smtp_settings import get_smtp


def set_notice_mailbox(*, session: Session, company_id: int, mailbox_id: int | None) -> None:
    """Choose (or, with None, clear) the mailbox the company's notices are sent from.

    It must be one of the company's mailboxes with sending (SMTP) settings. Flushed; the
    caller commits.
    """
    current = session.get(NoticeSender, company_id)
    if mailbox_id is None:
        if current is not None:
            session.delete(current)
            session.flush()
        return
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None or mailbox.company_id != company_id:
        raise NotFound(
            f"No mailbox {mailbox_id} in this company.",
            hint="List the company's mailboxes with `mailroom mailbox list`.",
        )
    get_smtp(session, mailbox)  # BadInput, with the fix, when it cannot send
    if current is None:
        session.add(NoticeSender(company_id=company_id, mailbox_id=mailbox_id))
    else:
        current.mailbox_id = mailbox_id
    session.flush()


def notice_mailbox_choices(*, session: Session, company_id: int) -> list[Mailbox]:
    """The company's mailboxes that can send (have SMTP settings), by address."""
    return list(
        session.scalars(
            select(Mailbox)
            .join(MailboxSmtp, MailboxSmtp.mailbox_id == Mailbox.id)
            .where(Mailbox.company_id == company_id)
            .order_by(Mailbox.address)
        )
    )


def current_notice_mailbox_id(*, session: Session, company_id: int) -> int | None:
    """The chosen notice mailbox's id, or None."""
    sender = session.get(NoticeSender, company_id)
    return sender.mailbox_id if sender else None
