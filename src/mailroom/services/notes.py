"""Use cases: notes on a record (add, list, delete) and moving notes and tasks on a merge.

Access (issue 13): the record must be of the viewer's company (else NotFound, the same
answer as for a record that does not exist); a note "from this email" needs the viewer to
see that email (else NotFound, like crm.access.get_message); a note is deleted by its
author or an admin (Forbidden otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm import access, notes
from mailroom.crm.access import Viewer
from mailroom.db.models import Record, User
from mailroom.db.task_models import Note
from mailroom.db.times import as_utc
from mailroom.errors import BadInput, Forbidden, NotFound

MAX_NOTES = 500


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note as the API and the pages show it."""

    id: int
    record: str
    text: str
    author: str | None
    author_id: int | None
    message_id: int | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The note's JSON (`POST /api/v1/records/{type}/{id}/notes` answers with it)."""
        return {
            "id": self.id,
            "record": self.record,
            "text": self.text,
            "author": self.author,
            "author_id": self.author_id,
            "message_id": self.message_id,
            "created_at": self.created_at.isoformat(),
        }


def checked_message_id(session: Session, *, viewer: Viewer, message_id: int | None) -> int | None:
    """`message_id` if the viewer may see that email; NotFound otherwise (or None)."""
    if message_id is None:
        return None
    message, _level = access.get_message(session, viewer=viewer, message_id=message_id)
    return message.id


def add_note(
    *,
    session: Session,
    viewer: Viewer,
    record_type: str,
    record_id: int,
    text: str,
    message_id: int | None = None,
) -> NoteView:
    """Add a note to the record (from an email when `message_id` is given). Flushed; the
    caller commits."""
    record = access.get_record(session, viewer=viewer, record_type=record_type, record_id=record_id)
    body = text.strip()
    if not body:
        raise BadInput("text: the note is empty.", hint="Write something in the note.")
    if len(body) > notes.NOTE_MAX:
        raise BadInput(
            f"text: the note is longer than {notes.NOTE_MAX} characters.",
            hint="Split it into several notes.",
        )
    mid = checked_message_id(session, viewer=viewer, message_id=message_id)
    note = notes.add_note(
        session, record=record, author_id=viewer.user_id, text=body, message_id=mid
    )
    return _views(session, [note])[0]


def record_notes(*, session: Session, viewer: Viewer, record: Record) -> list[NoteView]:
    """The record's notes, newest first (at most MAX_NOTES)."""
    if record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    rows = session.scalars(
        select(Note)
        .where(Note.record_id == record.id)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(MAX_NOTES)
    )
    return _views(session, list(rows))


def delete_note(*, session: Session, viewer: Viewer, note_id: int) -> str:
    """Delete a note: its author or an admin of the company; returns its record's TYPE:ID.
    Flushed; the caller commits."""
    note = session.get(Note, note_id)
    if note is None or note.company_id != viewer.company_id:
        raise NotFound(f"No note {note_id}.", hint="Open the record to see its notes.")
    if note.author_id != viewer.user_id and not viewer.is_admin:
        raise Forbidden("Only the note's author or an admin deletes it.")
    record = _refs(session, {note.record_id})[note.record_id]
    session.delete(note)
    session.flush()
    return record


def move_notes_and_tasks(session: Session, *, from_id: int, to_id: int) -> int:
    """A record merge's share: every note and task of `from_id` moves to `to_id` (both of
    one company, checked by the merge). Returns how many moved. Flushed, not committed."""
    return notes.move_notes_and_tasks(session, from_id=from_id, to_id=to_id)


def utc(value: datetime) -> datetime:
    """A stored (non-null) datetime as aware UTC (db.times.as_utc)."""
    aware = as_utc(value)
    assert aware is not None
    return aware


def _views(session: Session, rows: list[Note]) -> list[NoteView]:
    authors = {n.author_id for n in rows if n.author_id}
    emails = (
        {k: v for k, v in session.execute(select(User.id, User.email).where(User.id.in_(authors)))}
        if authors
        else {}
    )
    refs = _refs(session, {n.record_id for n in rows})
    return [
        NoteView(
            id=n.id,
            record=refs[n.record_id],
            text=n.text,
            author=emails.get(n.author_id) if n.author_id else None,
            author_id=n.author_id,
            message_id=n.message_id,
            created_at=utc(n.created_at),
        )
        for n in rows
    ]


def _refs(session: Session, record_ids: set[int]) -> dict[int, str]:
    if not record_ids:
        return {}
    rows = session.execute(select(Record.id, Record.type).where(Record.id.in_(record_ids)))
    return {rid: f"{rtype}:{rid}" for rid, rtype in rows}
