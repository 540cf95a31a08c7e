"""Use case: list unmatched mail's correspondents, by person or by domain (issue 13, item 3).

The grouping and what counts as unmatched are crm.unmatched's; this adds the opaque cursor
(one format for the page and the API) and the link to create a record from a group: the
records form at `/records/new` with `type`, `name`, `email` or `domain` prefilled.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer
from mailroom.crm.unmatched import Group, UnmatchedGroup, UnmatchedPage, unmatched_groups
from mailroom.errors import BadInput

MAX_PAGE = 200


def list_unmatched(
    *, session: Session, viewer: Viewer, group: str, cursor: str | None = None, limit: int = 50
) -> UnmatchedPage:
    """One page of unmatched correspondents (`group` "person") or domains ("domain"),
    newest first, as the viewer may see them."""
    if group not in ("person", "domain"):
        raise BadInput(f"group: {group!r} is not a grouping.", hint="Use person or domain.")
    kind: Group = "person" if group == "person" else "domain"
    return unmatched_groups(
        session,
        viewer=viewer,
        group=kind,
        after=decode_position(cursor),
        limit=max(1, min(limit, MAX_PAGE)),
    )


def group_json(item: UnmatchedGroup, group: str) -> dict[str, Any]:
    """One item of `GET /api/v1/unmatched`."""
    return {
        "address" if group == "person" else "domain": item.key,
        "messages": item.messages,
        "last_date": item.last_date.isoformat(),
        "name": item.name,
    }


def create_link(item: UnmatchedGroup, group: str) -> str:
    """The records form prefilled for this group: a lead with name and email for a person,
    an account with name and domain for a domain."""
    if group == "person":
        query = {"type": "lead", "name": item.name, "email": item.key}
    else:
        query = {"type": "account", "name": item.name, "domain": item.key}
    return "/records/new?" + urlencode(query)


def encode_position(position: tuple[datetime, str] | None) -> str | None:
    """An opaque cursor for a page position (None at the end)."""
    if position is None:
        return None
    raw = json.dumps(["u1", position[0].isoformat(), position[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str | None) -> tuple[datetime, str] | None:
    """The position a cursor of `encode_position` stands for; BadInput if it is not one."""
    if not cursor:
        return None
    try:
        kind, when, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "u1" or not isinstance(key, str) or len(key) > 320:
            raise ValueError(kind)
        return datetime.fromisoformat(when), key
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadInput(
            "cursor: not a cursor of this list.", hint="Use the `next` value of the last page."
        ) from None
