"""Finding the mailbox a use case acts on, with the caller's access checked once."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Mailbox
from mailroom.errors import Forbidden
from mailroom.mailboxes.store import get_mailbox


def load_mailbox(session: Session, *, mailbox_id: int, viewer: Viewer | None) -> Mailbox:
    """The mailbox; for a web caller (`viewer`), only one they may manage (else NotFound).

    The CLI passes no viewer: whoever runs it administers the data dir.
    """
    if viewer is not None:
        return access.get_mailbox(session, viewer=viewer, mailbox_id=mailbox_id)
    return get_mailbox(session, mailbox_id)


def require_owner(mailbox: Mailbox, *, viewer: Viewer | None) -> Mailbox:
    """The mailbox, if the web caller owns it; `Forbidden` for anyone else (an admin).

    An admin may disable, enable, test, sync or disconnect a member's mailbox, but never
    change where or as whom it logs in: that would send the member's stored password to a
    server of the admin's choosing. The CLI (no viewer) is the operator's.
    """
    if viewer is not None and mailbox.user_id != viewer.user_id:
        raise Forbidden(
            f"Only the owner of mailbox {mailbox.id} ({mailbox.address}) can change its "
            "servers or login.",
            hint="You can disable, enable, test or disconnect it; ask its owner to change "
            "the settings.",
        )
    return mailbox
