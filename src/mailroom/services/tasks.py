"""Use cases: tasks on records — create, list ("My tasks"), edit, mark done, delete.

A task has a title, a due date, an assignee (a user of the company; the creator when none
is given), a done flag and optionally the email it was made from.

Access (issue 13): the record, the email and the task must be the viewer's company's (else
NotFound, like ids that do not exist); the email must be visible to the viewer (strict
privacy); an assignee outside the company is refused like an unknown user (BadInput,
422). A task is changed or deleted by its assignee, its creator or an admin (Forbidden
otherwise); anyone of the company may read it, as they may read the record.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from mailroom.crm import access, notes
from mailroom.crm.access import Viewer
from mailroom.db.models import Record, User
from mailroom.db.task_models import Task
from mailroom.digits import is_number
from mailroom.errors import BadInput, Forbidden, NotFound
from mailroom.services.notes import checked_message_id, utc

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task as the API and the pages show it."""

    id: int
    record: str
    record_name: str
    title: str
    due: date
    assignee_id: int | None
    assignee: str | None
    done: bool
    done_at: datetime | None
    message_id: int | None
    created_by: int | None
    created_at: datetime
    overdue: bool

    def to_json(self) -> dict[str, Any]:
        """The task's JSON, one shape for every answer."""
        return {
            "id": self.id,
            "record": self.record,
            "record_name": self.record_name,
            "title": self.title,
            "due": self.due.isoformat(),
            "assignee_id": self.assignee_id,
            "assignee": self.assignee,
            "done": self.done,
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "message_id": self.message_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "overdue": self.overdue,
        }


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of tasks and the position after its last one (None at the end)."""

    items: list[TaskView]
    next: tuple[date, int] | None


def parse_record_ref(ref: str) -> tuple[str, int]:
    """ "TYPE:ID" → (type, id); BadInput naming the field otherwise."""
    kind, _, ident = ref.strip().partition(":")
    if not kind or not is_number(ident) or len(ident) > 18:
        raise BadInput(
            f"record: {ref!r} is not a record reference.", hint="Use TYPE:ID, e.g. lead:12."
        )
    return kind, int(ident)


def _title(title: str) -> str:
    text = " ".join(title.split())
    if not text:
        raise BadInput("title: the task has no title.", hint="Say what is to be done.")
    if len(text) > notes.TITLE_MAX:
        raise BadInput(
            f"title: longer than {notes.TITLE_MAX} characters.", hint="Shorten the title."
        )
    return text


def _assignee(session: Session, viewer: Viewer, assignee_id: int | None) -> int:
    if assignee_id is None:
        return viewer.user_id
    user = session.get(User, assignee_id)
    if user is None or user.company_id != viewer.company_id:
        raise BadInput(
            f"assignee_id: no user {assignee_id} in your company.",
            hint="Assign the task to a user of your company (or leave it out for yourself).",
        )
    return user.id


def create_task(
    *,
    session: Session,
    viewer: Viewer,
    record: str,
    title: str,
    due: date,
    assignee_id: int | None = None,
    message_id: int | None = None,
) -> TaskView:
    """Create a task on the record `TYPE:ID`. Flushed; the caller commits."""
    kind, rid = parse_record_ref(record)
    target = access.get_record(session, viewer=viewer, record_type=kind, record_id=rid)
    task = notes.add_task(
        session,
        record=target,
        title=_title(title),
        due=due,
        assignee_id=_assignee(session, viewer, assignee_id),
        created_by=viewer.user_id,
        message_id=checked_message_id(session, viewer=viewer, message_id=message_id),
    )
    return views(session, [task])[0]


def get_task(*, session: Session, viewer: Viewer, task_id: int) -> Task:
    """A task of the viewer's company, else NotFound."""
    task = session.get(Task, task_id)
    if task is None or task.company_id != viewer.company_id:
        raise NotFound(f"No task {task_id}.", hint="Open “My tasks” or the record to see tasks.")
    return task


def _may_change(viewer: Viewer, task: Task) -> None:
    if viewer.is_admin or viewer.user_id in (task.assignee_id, task.created_by):
        return
    raise Forbidden(
        "Only the task's assignee, its creator or an admin changes it.",
        hint="Ask them, or an admin of your company.",
    )


def update_task(
    *,
    session: Session,
    viewer: Viewer,
    task_id: int,
    title: str | None = None,
    due: date | None = None,
    assignee_id: int | None = None,
    done: bool | None = None,
    now: datetime | None = None,
) -> TaskView:
    """Change a task's title, due date, assignee or done flag. Flushed; the caller commits."""
    task = get_task(session=session, viewer=viewer, task_id=task_id)
    _may_change(viewer, task)
    if title is not None:
        task.title = _title(title)
    if due is not None:
        task.due = due
    if assignee_id is not None:
        task.assignee_id = _assignee(session, viewer, assignee_id)
    if done is not None and done != task.done:
        notes.set_done(task, done, now=now or datetime.now(UTC))
    session.flush()
    return views(session, [task])[0]


def delete_task(*, session: Session, viewer: Viewer, task_id: int) -> None:
    """Delete a task. Flushed; the caller commits."""
    task = get_task(session=session, viewer=viewer, task_id=task_id)
    _may_change(viewer, task)
    session.delete(task)
    session.flush()


def list_tasks(
    *,
    session: Session,
    viewer: Viewer,
    assignee: str = "me",
    open_only: bool = True,
    after: tuple[date, int] | None = None,
    limit: int = 50,
) -> TaskPage:
    """Tasks of the company, by due date (so overdue first), then id: `assignee` "me", "any"
    or a user id (digits); `open_only` leaves out done ones."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Task).where(Task.company_id == viewer.company_id)
    if assignee == "me":
        query = query.where(Task.assignee_id == viewer.user_id)
    elif is_number(assignee) and len(assignee) <= 18:
        query = query.where(Task.assignee_id == int(assignee))
    elif assignee != "any":
        raise BadInput(f"assignee: {assignee!r} is not me, any or a user id.")
    if open_only:
        query = query.where(Task.done.is_(False))
    if after is not None:
        query = query.where(_after(after))
    rows = list(session.scalars(query.order_by(Task.due, Task.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return TaskPage(
        items=views(session, rows), next=(rows[-1].due, rows[-1].id) if more and rows else None
    )


def record_tasks(*, session: Session, viewer: Viewer, record: Record) -> list[TaskView]:
    """The record's tasks (open first, by due date), at most MAX_PAGE."""
    if record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    rows = session.scalars(
        select(Task)
        .where(Task.record_id == record.id)
        .order_by(Task.done, Task.due, Task.id)
        .limit(MAX_PAGE)
    )
    return views(session, list(rows))


def _after(position: tuple[date, int]) -> ColumnElement[bool]:
    due, task_id = position
    return or_(Task.due > due, and_(Task.due == due, Task.id > task_id))


def views(session: Session, rows: list[Task], *, today: date | None = None) -> list[TaskView]:
    """Tasks as views, with their record's name and the assignee's address (two queries)."""
    today = today or datetime.now(UTC).date()
    users = {t.assignee_id for t in rows if t.assignee_id}
    emails = (
        {k: v for k, v in session.execute(select(User.id, User.email).where(User.id.in_(users)))}
        if users
        else {}
    )
    records = {t.record_id for t in rows}
    named = (
        {
            rid: (f"{rtype}:{rid}", name)
            for rid, rtype, name in session.execute(
                select(Record.id, Record.type, Record.name).where(Record.id.in_(records))
            )
        }
        if records
        else {}
    )
    return [
        TaskView(
            id=t.id,
            record=named[t.record_id][0],
            record_name=named[t.record_id][1],
            title=t.title,
            due=t.due,
            assignee_id=t.assignee_id,
            assignee=emails.get(t.assignee_id) if t.assignee_id else None,
            done=t.done,
            done_at=utc(t.done_at) if t.done_at else None,
            message_id=t.message_id,
            created_by=t.created_by,
            created_at=utc(t.created_at),
            overdue=not t.done and t.due < today,
        )
        for t in rows
    ]


def encode_position(position: tuple[date, int] | None) -> str | None:
    """An opaque cursor for a task page position (None at the end)."""
    if position is None:
        return None
    raw = f"t1:{position[0].isoformat()}:{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str | None) -> tuple[date, int] | None:
    """The position of an `encode_position` cursor; BadInput if it is not one."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, day, ident = text.split(":")
        if kind != "t1" or not is_number(ident) or len(ident) > 18:
            raise ValueError(text)
        return date.fromisoformat(day), int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInput(
            "cursor: not a cursor of this list.", hint="Use the `next` value of the last page."
        ) from None


def assignable_users(*, session: Session, viewer: Viewer) -> list[User]:
    """The users of the viewer's company a task may be assigned to, by address."""
    return list(
        session.scalars(
            select(User).where(User.company_id == viewer.company_id).order_by(User.email)
        )
    )
