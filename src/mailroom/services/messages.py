"""Finding one message, by its Mailroom id or its Message-ID: one behaviour for all.

The Message-ID lookup is `matching.why.find_message` (normalised, angle brackets
optional, by stored identity); the API adds Mailroom's numeric ids and the viewer's
access level. `mailroom why`/`link`/`unlink` and `GET /api/v1/messages/{ref}` agree.

For a viewer, a message they may not see is answered exactly like one that does not exist
(`unknown`): the same error, the same words, echoing only what they asked for, never
Mailroom's internal id (issue 11).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Company, Message
from mailroom.digits import is_number
from mailroom.errors import NotFound
from mailroom.matching.why import find_message as find_by_message_id

MAX_ID_DIGITS = 18  # a longer run of digits cannot be a row id (64-bit)


def find_message(
    *, session: Session, ref: str, viewer: Viewer | None = None, company: Company | None = None
) -> tuple[Message, str]:
    """The message `ref` names and the caller's access level to it.

    `ref` is a Message-ID (with or without <>) or, for a web caller (`viewer`), also a
    Mailroom message id. A viewer sees only what `security.access` allows (NotFound
    otherwise); the CLI (no viewer) sees everything, at level `everything`, of `company`
    or of any company when the Message-ID is unambiguous.
    """
    if viewer is None:
        return find_by_message_id(session, ref, company), "everything"
    if is_number(ref) and len(ref) <= MAX_ID_DIGITS:
        try:
            return access.get_message(session, viewer=viewer, message_id=int(ref))
        except NotFound:
            pass
    owner = session.get(Company, viewer.company_id)
    try:
        found = find_by_message_id(session, ref, owner)
        return access.get_message(session, viewer=viewer, message_id=found.id)
    except NotFound:
        raise unknown(ref) from None


def unknown(ref: str) -> NotFound:
    """The one answer for a message that is not there or not the viewer's to see."""
    shown = ref.strip()[:200]
    return NotFound(
        f"No message {shown!r} that you can see.",
        hint="Use an `id` or `message_id` from a timeline.",
    )
