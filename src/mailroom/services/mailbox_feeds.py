"""Which record types a mailbox's mail may link to (issue 13 item 11, "what it feeds").

One setting per mailbox, default every type: `mailroom mailbox edit ID --feeds lead,contact`,
the mailbox settings page and `PATCH /api/v1/mailboxes/{id}/feeds` all call these. The
mailbox's owner and the company's admins may change it (it moves no credential). Links
already made stay; the linker refuses the others from now on and keeps each refusal for
`mailroom why` (matching.linker.record_feed_skips).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer
from mailroom.db.models import RECORD_TYPES
from mailroom.matching.policy import feeds_of, parse_feeds, set_feeds
from mailroom.services.lookup import load_mailbox


def mailbox_feeds(*, session: Session, mailbox_id: int, viewer: Viewer | None) -> list[str]:
    """The record types the mailbox feeds (every type when unset), as the viewer may see."""
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    chosen = feeds_of(session, mailbox_id=mailbox.id)
    return list(RECORD_TYPES) if chosen is None else chosen


def change_mailbox_feeds(
    *, session: Session, mailbox_id: int, feeds: str | Sequence[str], viewer: Viewer | None
) -> list[str]:
    """Set the mailbox's feeds (`all` or types), committed; returns the types now fed."""
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    set_feeds(session, mailbox=mailbox, feeds=parse_feeds(feeds))
    session.commit()
    return mailbox_feeds(session=session, mailbox_id=mailbox_id, viewer=viewer)
