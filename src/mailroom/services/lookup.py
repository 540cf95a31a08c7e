"""Finding the mailbox a use case acts on, with the caller's access checked once."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Mailbox
from mailroom.mailboxes.store import get_mailbox


def load_mailbox(session: Session, *, mailbox_id: int, viewer: Viewer | None) -> Mailbox:
    """The mailbox; for a web caller (`viewer`), only one they may manage (else NotFound).

    The CLI passes no viewer: whoever runs it administers the data dir.
    """
    if viewer is not None:
        return access.get_mailbox(session, viewer=viewer, mailbox_id=mailbox_id)
    return get_mailbox(session, mailbox_id)
