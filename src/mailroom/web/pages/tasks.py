"""Pages of notes and tasks: "My tasks", a record's activity stream (mail, notes, tasks,
filterable), and the forms that add a note or task (on a record or from an email), mark a
task done and delete. Every route parses, calls services.notes / services.tasks /
services.activity (where access is checked), and presents or redirects back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.digits import is_number
from mailroom.services import activity, notes, tasks
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import is_htmx, render

router = APIRouter()
Back = Literal["tasks", "record", "message"]


def _back(back: str, *, record: str = "", message_id: int | None = None) -> str:
    """Where a form returns to: built here, never taken from the form (no open redirect)."""
    if back == "message" and message_id:
        return f"/messages/{message_id}?notice=task-saved"
    if back == "record" and record:
        kind, _, ident = record.partition(":")
        return f"/records/{kind}/{ident}?notice=task-saved#activity"
    return "/tasks?notice=task-saved"


def _optional_id(value: str) -> int | None:
    text = value.strip()
    return int(text) if is_number(text) and len(text) <= 18 else None


@router.get("/tasks")
def my_tasks(
    request: Request,
    ctx: PageCtx,
    db: Db,
    done: Annotated[bool, Query()] = False,
    cursor: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    page = tasks.list_tasks(
        session=db,
        viewer=ctx.viewer,
        assignee="me",
        open_only=not done,
        after=tasks.decode_position(cursor or None),
    )
    return render(
        request,
        "tasks.html",
        ctx,
        nav="tasks",
        tasks=page.items,
        show_done=done,
        next_cursor=tasks.encode_position(page.next),
        today=datetime.now(UTC).date(),
        users=tasks.assignable_users(session=db, viewer=ctx.viewer),
    )


@router.get("/tasks/assignees")
def assignee_select(request: Request, ctx: PageCtx, db: Db) -> Response:
    """The assignee choice of a task form (loaded into the record and message pages' forms,
    which default to the signed-in user without it)."""
    return render(
        request,
        "_assignee_select.html",
        ctx,
        users=tasks.assignable_users(session=db, viewer=ctx.viewer),
        selected=ctx.user.id,
    )


@router.post("/tasks/{task_id}/edit")
def edit_task(
    ctx: Csrf,
    db: Db,
    task_id: int,
    title: Annotated[str, Form(max_length=300)],
    due: Annotated[date, Form()],
    assignee_id: Annotated[str, Form(max_length=18)] = "",
) -> Response:
    tasks.update_task(
        session=db,
        viewer=ctx.viewer,
        task_id=task_id,
        title=title,
        due=due,
        assignee_id=_optional_id(assignee_id),
    )
    db.commit()
    return RedirectResponse("/tasks?notice=task-saved", status_code=303)


@router.post("/tasks")
def add_task(
    ctx: Csrf,
    db: Db,
    record: Annotated[str, Form(max_length=40)],
    title: Annotated[str, Form(max_length=300)],
    due: Annotated[date, Form()],
    assignee_id: Annotated[str, Form(max_length=18)] = "",
    message_id: Annotated[str, Form(max_length=18)] = "",
    back: Annotated[Back, Form()] = "record",
) -> Response:
    mid = _optional_id(message_id)
    tasks.create_task(
        session=db,
        viewer=ctx.viewer,
        record=record,
        title=title,
        due=due,
        assignee_id=_optional_id(assignee_id),
        message_id=mid,
    )
    db.commit()
    return RedirectResponse(_back(back, record=record, message_id=mid), status_code=303)


@router.post("/tasks/{task_id}/done")
def mark_done(
    ctx: Csrf,
    db: Db,
    task_id: int,
    done: Annotated[bool, Form()] = True,
    back: Annotated[Back, Form()] = "tasks",
) -> Response:
    task = tasks.update_task(session=db, viewer=ctx.viewer, task_id=task_id, done=done)
    db.commit()
    return RedirectResponse(
        _back(back, record=task.record, message_id=task.message_id), status_code=303
    )


@router.post("/tasks/{task_id}/delete")
def delete_task(
    ctx: Csrf, db: Db, task_id: int, back: Annotated[Back, Form()] = "tasks"
) -> Response:
    task = tasks.views(db, [tasks.get_task(session=db, viewer=ctx.viewer, task_id=task_id)])[0]
    tasks.delete_task(session=db, viewer=ctx.viewer, task_id=task_id)
    db.commit()
    return RedirectResponse(_back(back, record=task.record), status_code=303)


@router.post("/records/{type}/{id}/notes")
def add_note(
    ctx: Csrf,
    db: Db,
    type: str,
    id: int,
    text: Annotated[str, Form(max_length=20_000)],
    message_id: Annotated[str, Form(max_length=18)] = "",
    back: Annotated[Back, Form()] = "record",
) -> Response:
    mid = _optional_id(message_id)
    note = notes.add_note(
        session=db, viewer=ctx.viewer, record_type=type, record_id=id, text=text, message_id=mid
    )
    db.commit()
    target = _back(back, record=note.record, message_id=mid).replace("task-saved", "note-saved")
    return RedirectResponse(target, status_code=303)


@router.post("/notes")
def add_note_to(
    ctx: Csrf,
    db: Db,
    record: Annotated[str, Form(max_length=40)],
    text: Annotated[str, Form(max_length=20_000)],
    message_id: Annotated[str, Form(max_length=18)] = "",
    back: Annotated[Back, Form()] = "message",
) -> Response:
    """A note on the record `TYPE:ID` chosen in the form (the message page's block)."""
    kind, rid = tasks.parse_record_ref(record)
    mid = _optional_id(message_id)
    note = notes.add_note(
        session=db, viewer=ctx.viewer, record_type=kind, record_id=rid, text=text, message_id=mid
    )
    db.commit()
    target = _back(back, record=note.record, message_id=mid).replace("task-saved", "note-saved")
    return RedirectResponse(target, status_code=303)


@router.post("/notes/{note_id}/delete")
def delete_note(ctx: Csrf, db: Db, note_id: int) -> Response:
    record = notes.delete_note(session=db, viewer=ctx.viewer, note_id=note_id)
    db.commit()
    return RedirectResponse(_back("record", record=record), status_code=303)


@router.get("/records/{type}/{id}/activity")
def record_activity(
    request: Request,
    ctx: PageCtx,
    db: Db,
    type: str,
    id: int,
    show: Annotated[str, Query(max_length=10)] = "all",
    after: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    found = activity.record_activity(
        session=db, viewer=ctx.viewer, record_type=type, record_id=id, show=show, after=after
    )
    values: dict[str, Any] = {
        "activity": found,
        "show": show,
        "record_ref": f"{type}:{id}",
        "record_url": f"/records/{type}/{id}",
    }
    if is_htmx(request):  # the filter bar comes along out of band, marking the current one
        return render(request, "_activity.html", ctx, oob=after is None, **values)
    return render(
        request,
        "activity.html",
        ctx,
        nav="records",
        users=tasks.assignable_users(session=db, viewer=ctx.viewer),
        **values,
    )
