"""The record forms of the dashboard: create, edit, add and remove addresses and domains,
delete, merge, search the server for older mail, and a record from an email.

Each route parses its form, calls one function of services.records (or
services.record_links), commits and redirects (303) to the page that shows the result;
a bad value answers the error page with the fix and a way back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from mailroom.crm import access
from mailroom.crm.records import EmailField
from mailroom.digits import is_number
from mailroom.services import records
from mailroom.services.record_links import start_server_search
from mailroom.services.records import UNSET, RecordChange, RecordEdit
from mailroom.web.deps import Csrf, Db, MailroomApp

router = APIRouter()
Text = Annotated[str, Form(max_length=300)]
Address = Annotated[str, Form(max_length=320)]


def _to(path: str, notice: str, change: RecordChange | None = None) -> Response:
    counts = ""
    if change is not None:
        counts = f"&linked={change.linked}&unlinked={change.unlinked}&queued={change.queued}"
    return RedirectResponse(f"{path}?notice={notice}{counts}", status_code=303)


def _page(change: RecordChange) -> str:
    return f"/records/{change.record.type}/{change.record.id}"


def _optional_id(value: str) -> int | None:
    value = value.strip().rpartition(":")[2]
    return int(value) if is_number(value) and len(value) < 19 else None


@router.post("/records")
def create_record(
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    type: Annotated[str, Form(max_length=20)],
    name: Text = "",
    email: Address = "",
    domain: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    change = records.create_record(
        db,
        viewer=ctx.viewer,
        record_type=type,
        name=name,
        emails=[EmailField("main", email)] if email.strip() else [],
        domains=[domain] if domain.strip() else [],
        owner=ctx.user.id,
        app=app,
    )
    db.commit()
    return _to(_page(change), "record-created", change)


@router.post("/records/{type}/{id}/edit")
def edit_record(
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    type: str,
    id: int,
    name: Text = "",
    owner: Annotated[str, Form(max_length=20)] = "",
    account: Annotated[str, Form(max_length=40)] = "",
    stage: Annotated[str, Form(max_length=100)] = "",
    status: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    edit = RecordEdit(
        name=name if name.strip() else None,
        owner=_optional_id(owner),
        account_id=_optional_id(account) if record.type != "account" else UNSET,
        fields={"stage": stage.strip() or None, "status": status.strip() or None},
    )
    change = records.edit_record(db, viewer=ctx.viewer, record=record, edit=edit, app=app)
    db.commit()
    return _to(_page(change), "record-saved", change)


@router.post("/records/{type}/{id}/emails")
def add_email(
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    type: str,
    id: int,
    address: Address,
    field: Annotated[str, Form(max_length=100)] = "secondary",
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    edit = RecordEdit(add_emails=[EmailField(field.strip() or "secondary", address)])
    change = records.edit_record(db, viewer=ctx.viewer, record=record, edit=edit, app=app)
    db.commit()
    return _to(_page(change), "record-saved", change)


@router.post("/records/{type}/{id}/emails/remove")
def remove_email(ctx: Csrf, db: Db, type: str, id: int, address: Address) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    change = records.edit_record(
        db, viewer=ctx.viewer, record=record, edit=RecordEdit(remove_emails=[address])
    )
    db.commit()
    return _to(_page(change), "record-saved", change)


@router.post("/records/{type}/{id}/domains")
def add_domain(
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    type: str,
    id: int,
    domain: Annotated[str, Form(max_length=255)],
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    change = records.edit_record(
        db, viewer=ctx.viewer, record=record, edit=RecordEdit(add_domains=[domain]), app=app
    )
    db.commit()
    return _to(_page(change), "record-saved", change)


@router.post("/records/{type}/{id}/domains/remove")
def remove_domain(
    ctx: Csrf, db: Db, type: str, id: int, domain: Annotated[str, Form(max_length=255)]
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    change = records.edit_record(
        db, viewer=ctx.viewer, record=record, edit=RecordEdit(remove_domains=[domain])
    )
    db.commit()
    return _to(_page(change), "record-saved", change)


@router.post("/records/{type}/{id}/delete")
def delete_record(ctx: Csrf, db: Db, type: str, id: int) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    records.delete_record(db, viewer=ctx.viewer, record=record)
    db.commit()
    return RedirectResponse(f"/records?type={type}&notice=record-deleted", status_code=303)


@router.post("/records/{type}/{id}/merge")
def merge_record(
    ctx: Csrf, db: Db, type: str, id: int, source: Annotated[str, Form(max_length=40)]
) -> Response:
    survivor = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    merged_from = records.find_record(db, viewer=ctx.viewer, ref=source.strip())
    records.merge_records(db, viewer=ctx.viewer, survivor=survivor, source=merged_from)
    db.commit()
    return RedirectResponse(f"/records/{type}/{id}?notice=records-merged", status_code=303)


@router.post("/records/{type}/{id}/server-search")
def server_search(ctx: Csrf, db: Db, app: MailroomApp, type: str, id: int) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    db.commit()  # no transaction while the thread talks to the mail servers
    start_server_search(app, record=record)
    return RedirectResponse(f"/records/{type}/{id}?notice=server-search-started", status_code=303)


@router.post("/messages/{message_id}/records")
def record_from_message(
    ctx: Csrf,
    db: Db,
    message_id: int,
    type: Annotated[str, Form(max_length=20)],
    use: Annotated[str, Form(max_length=20)] = "from",
) -> Response:
    change = records.create_from_message(
        db, viewer=ctx.viewer, message_id=message_id, record_type=type, use=use
    )
    db.commit()
    return _to(_page(change), "record-created", change)
