"""`/api/v1/records/{type}/{id}/notes` and `/api/v1/tasks…`: notes and tasks on records.

Routes parse, call services.notes / services.tasks (where company, role and privacy are
checked), commit, and present.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from mailroom.crm import access
from mailroom.services import notes, tasks
from mailroom.web.api.schemas import ERRORS, Page
from mailroom.web.api.schemas_in import Strict
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["notes and tasks"], responses=ERRORS)
RecordType = Literal["lead", "contact", "account", "case", "opportunity"]
Id = Annotated[int, Path(ge=1, le=2**62)]


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=20_000)
    message_id: int | None = Field(None, ge=1, le=2**62, description="The email it is about.")


class NoteOut(BaseModel):
    id: int
    record: str
    text: str
    author: str | None
    author_id: int | None
    message_id: int | None
    created_at: str


class TaskIn(Strict):
    record: str = Field(max_length=40, description="TYPE:ID, e.g. lead:12.")
    title: str = Field(min_length=1, max_length=300)
    due: date
    assignee_id: int | None = Field(
        None, ge=1, le=2**62, description="A user of your company; yourself when left out."
    )
    message_id: int | None = Field(None, ge=1, le=2**62, description="The email it is from.")


class TaskPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=300)
    due: date | None = None
    assignee_id: int | None = Field(None, ge=1, le=2**62)
    done: bool | None = None


class TaskOut(BaseModel):
    id: int
    record: str
    record_name: str
    title: str
    due: str
    assignee_id: int | None
    assignee: str | None
    done: bool
    done_at: str | None
    message_id: int | None
    created_by: int | None
    created_at: str
    overdue: bool


@router.post("/records/{type}/{id}/notes", status_code=201, response_model=NoteOut)
def add_note(ctx: ApiCtx, db: Db, type: RecordType, id: Id, body: NoteIn) -> dict[str, Any]:
    """Add a note to the record, optionally about one email (`message_id`)."""
    note = notes.add_note(
        session=db,
        viewer=ctx.viewer,
        record_type=type,
        record_id=id,
        text=body.text,
        message_id=body.message_id,
    )
    db.commit()
    return note.to_json()


@router.get("/records/{type}/{id}/notes", response_model=Page[NoteOut])
def list_notes(ctx: ApiCtx, db: Db, type: RecordType, id: Id) -> dict[str, Any]:
    """The record's notes, newest first (one page of up to 500)."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    found = notes.record_notes(session=db, viewer=ctx.viewer, record=record)
    return {"items": [n.to_json() for n in found], "next": None}


@router.delete("/notes/{note_id}", status_code=204)
def delete_note(ctx: ApiCtx, db: Db, note_id: Id) -> Response:
    """Delete a note (its author or an admin)."""
    notes.delete_note(session=db, viewer=ctx.viewer, note_id=note_id)
    db.commit()
    return Response(status_code=204)


@router.post("/tasks", status_code=201, response_model=TaskOut)
def create_task(ctx: ApiCtx, db: Db, body: TaskIn) -> dict[str, Any]:
    """Create a task on a record, assigned to `assignee_id` (yourself by default)."""
    task = tasks.create_task(
        session=db,
        viewer=ctx.viewer,
        record=body.record,
        title=body.title,
        due=body.due,
        assignee_id=body.assignee_id,
        message_id=body.message_id,
    )
    db.commit()
    return task.to_json()


@router.get("/tasks", response_model=Page[TaskOut])
def list_tasks(
    ctx: ApiCtx,
    db: Db,
    assignee: Annotated[
        str, Query(pattern=r"^(me|any|[0-9]{1,18})$", description="me, any or a user id.")
    ] = "me",
    open: Annotated[bool, Query(description="Only tasks not done.")] = True,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Tasks by due date (overdue first), then id."""
    page = tasks.list_tasks(
        session=db,
        viewer=ctx.viewer,
        assignee=assignee,
        open_only=open,
        after=tasks.decode_position(cursor),
        limit=limit,
    )
    return {
        "items": [t.to_json() for t in page.items],
        "next": tasks.encode_position(page.next),
    }


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(ctx: ApiCtx, db: Db, task_id: Id) -> dict[str, Any]:
    """One task."""
    task = tasks.get_task(session=db, viewer=ctx.viewer, task_id=task_id)
    return tasks.views(db, [task])[0].to_json()


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def update_task(ctx: ApiCtx, db: Db, task_id: Id, body: TaskPatch) -> dict[str, Any]:
    """Edit a task or mark it done (`{"done": true}`): its assignee, creator or an admin."""
    task = tasks.update_task(
        session=db,
        viewer=ctx.viewer,
        task_id=task_id,
        title=body.title,
        due=body.due,
        assignee_id=body.assignee_id,
        done=body.done,
    )
    db.commit()
    return task.to_json()


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(ctx: ApiCtx, db: Db, task_id: Id) -> Response:
    """Delete a task: its assignee, creator or an admin."""
    tasks.delete_task(session=db, viewer=ctx.viewer, task_id=task_id)
    db.commit()
    return Response(status_code=204)
