"""`/api/v1/records…`: search records, read one, page through its timeline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from mailroom.crm import access
from mailroom.web.api.schemas import (
    ERRORS,
    Page,
    RecordOut,
    TimelineItem,
    decode_cursor,
    encode_cursor,
)
from mailroom.web.deps import ApiCtx, Db
from mailroom.web.present import record_view, timeline_item

router = APIRouter(tags=["records"], responses=ERRORS)
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
