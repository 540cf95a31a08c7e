"""Record pages: search and lists per type, and a record's threaded email timeline.

The timeline page renders its first page (50 messages) with three indexed queries from
crm.access plus one for attachment counts; "Load more" fetches the next page by
cursor with htmx, so a record with 10,000 messages costs the same as one with 50.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from mailroom.crm import access
from mailroom.db.models import RECORD_TYPES, Attachment, Record, User
from mailroom.services.record_links import relink_progress, server_search_state
from mailroom.web.deps import Db, MailroomApp, PageCtx
from mailroom.web.templating import is_htmx, render

router = APIRouter()
PAGE = 50


@router.get("/records")
def records_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    type: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=320)] = "",
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    return _records_page(request, ctx, db, type=type, q=q, after=after, new=None)


@router.get("/records/new")
def new_record_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    type: Annotated[str, Query(max_length=20)] = "lead",
    name: Annotated[str, Query(max_length=300)] = "",
    email: Annotated[str, Query(max_length=320)] = "",
    domain: Annotated[str, Query(max_length=255)] = "",
) -> Response:
    """The records page with the New record form open and filled in (the Unmatched page's
    "create" links)."""
    new = {"type": type if type in RECORD_TYPES else "lead", "name": name}
    new |= {"email": email, "domain": domain}
    return _records_page(request, ctx, db, type=new["type"], q="", after=0, new=new)


def _records_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    *,
    type: str,
    q: str,
    after: int,
    new: dict[str, str] | None,
) -> Response:
    record_type = type if type in RECORD_TYPES else None
    found = access.search_records(
        db, viewer=ctx.viewer, record_type=record_type, q=q, after_id=after, limit=PAGE + 1
    )
    more = len(found) > PAGE
    found = found[:PAGE]
    accounts = _account_names(db, found)
    template = "records_rows.html" if is_htmx(request) else "records.html"
    return render(
        request,
        template,
        ctx,
        nav="records",
        records=found,
        accounts=accounts,
        type=record_type or "",
        q=q,
        types=RECORD_TYPES,
        next_after=found[-1].id if more else None,
        new=new or {},
    )


def _account_names(db: Db, records: list[Record]) -> dict[int, str]:
    ids = {r.account_id for r in records if r.account_id}
    if not ids:
        return {}
    rows = db.execute(select(Record.id, Record.name).where(Record.id.in_(ids)))
    return {rid: name for rid, name in rows}


def shown_fields(record: Record, account: Record | None) -> list[tuple[str, str]]:
    """The record's fields as (label, text) rows: a custom-field mapping becomes one row
    per field, an `account`/`company` naming the linked account is not repeated, and
    stage and status are in the edit form."""
    rows: list[tuple[str, str]] = []
    for key, value in record.fields.items():
        if key in ("stage", "status"):
            continue
        if key in ("account", "company") and account is not None and value == account.name:
            continue
        if isinstance(value, dict):
            rows += [(str(k).replace("_", " "), _text(v)) for k, v in value.items()]
        else:
            rows.append((key.replace("_", " "), _text(value)))
    return rows


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _counts(request: Request) -> dict[str, int]:
    """What the last form did to the record's mail (digits from the redirect, nothing else)."""
    found = {}
    for key in ("linked", "unlinked", "queued"):
        value = request.query_params.get(key, "")
        if value.isdigit() and len(value) < 10:
            found[key] = int(value)
    return found


@router.get("/records/{type}/{id}")
def record_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    app: MailroomApp,
    type: str,
    id: int,
    merge_q: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    account = db.get(Record, record.account_id) if record.account_id else None
    contacts: list[Record] = []
    if record.type == "account":
        contacts = list(
            db.scalars(select(Record).where(Record.account_id == record.id).order_by(Record.name))
        )
    merge_found = (
        [
            r
            for r in access.search_records(
                db, viewer=ctx.viewer, record_type=record.type, q=merge_q, limit=20
            )
            if r.id != record.id
        ]
        if merge_q.strip()
        else []
    )
    return render(
        request,
        "record.html",
        ctx,
        nav="records",
        record=record,
        account=account,
        contacts=contacts,
        fields=shown_fields(record, account),
        users=list(
            db.scalars(select(User).where(User.company_id == ctx.company.id).order_by(User.email))
        ),
        accounts=access.search_records(db, viewer=ctx.viewer, record_type="account", limit=200),
        may_remove=ctx.viewer.is_admin or record.owner_id == ctx.user.id,
        merge_q=merge_q,
        merge_found=merge_found,
        counts=_counts(request),
        progress=relink_progress(record.id, app),
        server_search=server_search_state(record.id, app),
        **_timeline_values(db, ctx, record, after=None),
    )


@router.get("/records/{type}/{id}/timeline")
def timeline_more(
    request: Request,
    ctx: PageCtx,
    db: Db,
    type: str,
    id: int,
    after: Annotated[int, Query(ge=1, le=2**62)],
) -> Response:
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    return render(
        request, "timeline.html", ctx, record=record, **_timeline_values(db, ctx, record, after)
    )


def _timeline_values(db: Db, ctx: PageCtx, record: Record, after: int | None) -> dict[str, Any]:
    page = access.visible_timeline_page(
        db, viewer=ctx.viewer, record=record, after=after, limit=PAGE
    )
    ids = [e.id for e in page.entries]
    attachments: dict[int, int] = {}
    if ids:
        for message_id, count in db.execute(
            select(Attachment.message_id, func.count())
            .where(Attachment.message_id.in_(ids))
            .group_by(Attachment.message_id)
        ):
            attachments[message_id] = count
    threads: dict[str, list[Any]] = {}
    for entry in page.entries:
        threads.setdefault(entry.conversation, []).append(entry)
    return {
        "threads": list(threads.values()),
        "levels": page.levels,
        "attachments": attachments,
        "next_after": page.next,
    }
