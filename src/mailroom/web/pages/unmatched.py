"""The "Unmatched" page: people (or domains) the team corresponds with who have no record,
with counts and the last date, newest first, and one click to create the record
(services.unmatched, the same list as `GET /api/v1/unmatched`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mailroom.services.unmatched import create_link, encode_position, list_unmatched
from mailroom.web.deps import Db, PageCtx
from mailroom.web.templating import render

router = APIRouter()
PAGE = 50


@router.get("/unmatched")
def unmatched_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    group: Annotated[str, Query(pattern="^(person|domain)$")] = "person",
    cursor: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    page = list_unmatched(
        session=db, viewer=ctx.viewer, group=group, cursor=cursor or None, limit=PAGE
    )
    return render(
        request,
        "unmatched.html",
        ctx,
        nav="unmatched",
        group=group,
        rows=[(item, create_link(item, group)) for item in page.items],
        next_cursor=encode_position(page.next),
    )
