"""The address book behind compose's To/Cc suggestions (issue 13 item 11).

Two sources, as the viewer may see them: the addresses of the company's records (every
user sees the company's records), then recent correspondents — the participants of
messages the viewer may see (strict privacy: only their own mail, `crm.access`), newest
first. The viewer's own addresses are never suggested. At most 20 answers; `q` matches
an address or a name anywhere, case-insensitively. `GET /api/v1/addressbook?q=` and the
compose form's datalist both call `suggestions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Message, MessageAddress, Record, RecordEmail

MAX_SUGGESTIONS = 20


def _pattern(query: str) -> str:
    text = query.strip().lower()[:200]
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _from_records(
    session: Session, *, viewer: Viewer, pattern: str, limit: int
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(RecordEmail.address, Record.name, Record.type, Record.id)
        .join(Record, Record.id == RecordEmail.record_id)
        .where(
            RecordEmail.company_id == viewer.company_id,
            or_(
                RecordEmail.address.like(pattern, escape="\\"),
                func.lower(Record.name).like(pattern, escape="\\"),
            ),
        )
        .order_by(Record.name, RecordEmail.address)
        .limit(limit * 2)
    )
    return [
        {"address": address, "name": name, "source": "record", "record": f"{rtype}:{rid}"}
        for address, name, rtype, rid in rows
    ]


def _from_mail(
    session: Session, *, viewer: Viewer, pattern: str, limit: int
) -> list[dict[str, Any]]:
    last = func.max(Message.date_utc)
    rows = session.execute(
        select(MessageAddress.address, func.max(MessageAddress.name), last)
        .join(Message, Message.id == MessageAddress.message_id)
        .where(
            MessageAddress.company_id == viewer.company_id,
            access.visible_messages(session, viewer),
            or_(
                MessageAddress.address.like(pattern, escape="\\"),
                func.lower(MessageAddress.name).like(pattern, escape="\\"),
            ),
        )
        .group_by(MessageAddress.address)
        .order_by(last.desc().nulls_last(), MessageAddress.address)
        .limit(limit * 2)
    )
    return [
        {"address": address, "name": name or "", "source": "recent", "record": None}
        for address, name, _ in rows
    ]


def suggestions(
    session: Session, *, viewer: Viewer, query: str, limit: int = MAX_SUGGESTIONS
) -> list[dict[str, Any]]:
    """Up to `limit` (at most 20) addresses for `query`: records first, then recent mail."""
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    pattern = _pattern(query)
    seen = {a.lower() for a in viewer.addresses}
    found: list[dict[str, Any]] = []
    for item in [
        *_from_records(session, viewer=viewer, pattern=pattern, limit=limit),
        *_from_mail(session, viewer=viewer, pattern=pattern, limit=limit),
    ]:
        if item["address"].lower() in seen:
            continue
        seen.add(item["address"].lower())
        found.append(item)
        if len(found) == limit:
            break
    return found
