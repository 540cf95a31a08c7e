"""Notes and tasks as stored rows: add, read per record, and move on a record merge.

No access checks here: services.notes and services.tasks decide who may do what (company,
role, privacy) and call these with rows they already checked.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailroom.db.models import Record
from mailroom.db.task_models import Note, Task

NOTE_MAX = 20_000
TITLE_MAX = 300


def add_note(
    session: Session, *, record: Record, author_id: int | None, text: str, message_id: int | None
) -> Note:
    """A note on `record` (flushed, not committed)."""
    note = Note(
        company_id=record.company_id,
        record_id=record.id,
        author_id=author_id,
        text=text,
        message_id=message_id,
    )
    session.add(note)
    session.flush()
    return note


def add_task(
    session: Session,
    *,
    record: Record,
    title: str,
    due: date,
    assignee_id: int | None,
    created_by: int | None,
    message_id: int | None,
) -> Task:
    """A task on `record` (flushed, not committed)."""
    task = Task(
        company_id=record.company_id,
        record_id=record.id,
        title=title,
        due=due,
        assignee_id=assignee_id,
        created_by=created_by,
        message_id=message_id,
        done=False,
    )
    session.add(task)
    session.flush()
    return task


def set_done(task: Task, done: bool, *, now: datetime) -> None:
    """Mark a task done (with when) or open again."""
    task.done = done
    task.done_at = now if done else None


def move_notes_and_tasks(session: Session, *, from_id: int, to_id: int) -> int:
    """Move every note and task of record `from_id` onto record `to_id` (a merge); returns
    how many moved. Both records must be of one company (the merge checks that)."""
    moved = 0
    for model in (Note, Task):
        result = session.execute(
            update(model)
            .where(model.record_id == from_id)
            .values(record_id=to_id)
            .execution_options(synchronize_session=False)
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    session.expire_all()
    return moved
