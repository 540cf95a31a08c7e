"""`/api/v1/records…`: search, read, create, edit, delete and merge records, page through a
record's timeline; `POST /api/v1/messages/{id}/records` makes one from an email."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from mailroom.crm import access
from mailroom.crm.records import EmailField
from mailroom.services import records
from mailroom.services.record_links import start_server_search
from mailroom.services.records import RecordChange
from mailroom.web.api.schemas import (
    ERRORS,
    ErrorOut,
    Page,
    RecordChangeOut,
    RecordOut,
    TimelineItem,
    decode_cursor,
    encode_cursor,
)
from mailroom.web.api.schemas_in import (
    FromMessageIn,
    MergeIn,
    RecordFieldsIn,
    RecordIn,
    RecordPatchIn,
)
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.present import record_view, timeline_item

router = APIRouter(tags=["records"], responses=ERRORS)
WRITES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Only an admin or the record's owner may do this."},
    409: {
        "model": ErrorOut,
        "description": "A main address already belongs to another "
        "record of the same type; `message` names it (TYPE:ID).",
    },
}
RecordType = Literal["lead", "contact", "account", "case", "opportunity"]
RecordId = Annotated[int, Path(ge=1, le=2**62)]
Cursor = Annotated[str | None, Query(max_length=100, description="`next` of the last page.")]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/records", response_model=Page[RecordOut])
def list_records(
    ctx: ApiCtx,
    db: Db,
    type: Annotated[RecordType | None, Query(description="Only this record type.")] = None,
    q: Annotated[str, Query(max_length=320, description="Name, email or domain.")] = "",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Records of your company, by id, optionally of one type and matching `q`."""
    found = access.search_records(
        db,
        viewer=ctx.viewer,
        record_type=type,
        q=q,
        after_id=decode_cursor(cursor) or 0,
        limit=limit + 1,
    )
    more = len(found) > limit
    found = found[:limit]
    return {
        "items": [record_view(r) for r in found],
        "next": encode_cursor(found[-1].id) if more else None,
    }


@router.get("/records/{type}/{id}", response_model=RecordOut)
def get_record(ctx: ApiCtx, db: Db, type: RecordType, id: RecordId) -> dict[str, Any]:
    """One record with its addresses, domains and fields."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    return record_view(record)


@router.get("/records/{type}/{id}/timeline", response_model=Page[TimelineItem])
def get_timeline(
    ctx: ApiCtx, db: Db, type: RecordType, id: RecordId, cursor: Cursor = None, limit: Limit = 50
) -> dict[str, Any]:
    """The record's email timeline, newest first, as `mailroom timeline --json` prints it."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    page = access.visible_timeline_page(
        db, viewer=ctx.viewer, record=record, after=decode_cursor(cursor), limit=limit
    )
    return {
        "items": [
            timeline_item(e, level=page.levels[e.id], thread=page.threads.get(e.id, e.message_id))
            for e in page.entries
        ],
        "next": encode_cursor(page.next),
    }


def _emails(body: RecordFieldsIn) -> list[EmailField] | None:
    if body.emails is None:
        return None
    return [
        EmailField(e.field or ("main" if i == 0 else "secondary"), e.address)
        for i, e in enumerate(body.emails)
    ]


def _changed(change: RecordChange) -> dict[str, Any]:
    return {
        **record_view(change.record),
        "mail": {"linked": change.linked, "queued": change.queued, "unlinked": change.unlinked},
    }


@router.post("/records", response_model=RecordChangeOut, status_code=201, responses=WRITES)
def create_record(ctx: ApiCtx, db: Db, app: MailroomApp, body: RecordIn) -> dict[str, Any]:
    """Create a record; the stored mail of its addresses and domains is linked at once
    (`mail.queued` when more than 10,000 messages are linked in the background). Its
    owner is `owner_id`, or you when it is left out (null: nobody)."""
    change = records.create_record(
        db,
        viewer=ctx.viewer,
        record_type=body.type,
        name=body.name or "",
        emails=_emails(body) or [],
        domains=body.domains or [],
        account_id=body.account_id,
        owner=body.owner_id if "owner_id" in body.model_fields_set else ctx.user.id,
        fields=body.fields,
        app=app,
    )
    db.commit()
    return _changed(change)


@router.patch("/records/{type}/{id}", response_model=RecordChangeOut, responses=WRITES)
def edit_record(
    ctx: ApiCtx, db: Db, app: MailroomApp, type: RecordType, id: RecordId, body: RecordPatchIn
) -> dict[str, Any]:
    """Change a record: only the fields sent; `emails` and `domains` replace the lists.
    Removing an address removes the links it made (links made by hand stay)."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    sent = body.model_fields_set
    edit = records.RecordEdit(
        name=body.name if "name" in sent else None,
        record_type=body.type if body.type and body.type != type else None,
        emails=_emails(body) if "emails" in sent else None,
        domains=(body.domains or []) if "domains" in sent else None,
        account_id=body.account_id if "account_id" in sent else records.UNSET,
        owner=body.owner_id if "owner_id" in sent else records.UNSET,
        fields=body.fields if "fields" in sent else None,
    )
    change = records.edit_record(db, viewer=ctx.viewer, record=record, edit=edit, app=app)
    db.commit()
    return _changed(change)


@router.delete("/records/{type}/{id}", status_code=204, response_class=Response, responses=WRITES)
def delete_record(ctx: ApiCtx, db: Db, type: RecordType, id: RecordId) -> Response:
    """Delete a record (an admin or its owner); its mail is kept, linked to nothing new."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    records.delete_record(db, viewer=ctx.viewer, record=record)
    db.commit()
    return Response(status_code=204)


@router.post("/records/{type}/{id}/merge", response_model=RecordOut, responses=WRITES)
def merge_record(
    ctx: ApiCtx, db: Db, type: RecordType, id: RecordId, body: MergeIn
) -> dict[str, Any]:
    """Merge the record `from` names into this one: addresses, domains, links and all
    that hangs off it move here, and `from` is deleted."""
    survivor = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    source = records.find_record(db, viewer=ctx.viewer, ref=body.from_)
    merged = records.merge_records(db, viewer=ctx.viewer, survivor=survivor, source=source)
    db.commit()
    return record_view(merged)


@router.post(
    "/messages/{message_id}/records",
    response_model=RecordChangeOut,
    status_code=201,
    responses=WRITES,
)
def create_from_message(
    ctx: ApiCtx,
    db: Db,
    message_id: Annotated[int, Path(ge=1, le=2**62)],
    body: FromMessageIn,
) -> dict[str, Any]:
    """A lead, contact or case from this email (sender, or Reply-To for web-form mail),
    the email linked to it; a contact gets the account of the sender's domain."""
    change = records.create_from_message(
        db, viewer=ctx.viewer, message_id=message_id, record_type=body.type, use=body.use
    )
    db.commit()
    return _changed(change)


@router.post("/records/{type}/{id}/server-search", status_code=202)
def server_search(
    ctx: ApiCtx, db: Db, app: MailroomApp, type: RecordType, id: RecordId
) -> dict[str, Any]:
    """Search the company's mailboxes on the server for the record's older mail (never
    fetched: before a mailbox's sync window, or in a folder not synced), in the background;
    what it finds is linked. `started` is false while a search for it already runs."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    db.commit()  # no transaction while the thread talks to the mail servers
    return {"started": start_server_search(app, record=record)}
