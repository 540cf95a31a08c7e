"""`/api/v1/unmatched`: external correspondents with no record, by person or by domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mailroom.services.unmatched import encode_position, group_json, list_unmatched
from mailroom.web.api.schemas import ERRORS
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["unmatched"], responses=ERRORS)


class UnmatchedPerson(BaseModel):
    address: str = Field(description="The correspondent (group=person).")
    messages: int = Field(description="Unmatched emails with them that you may see.")
    last_date: str
    name: str = Field(description="Their display name in the mail, if any.")


class UnmatchedDomain(BaseModel):
    domain: str = Field(description="Their domain (group=domain; free mail left out).")
    messages: int = Field(description="Unmatched emails with people there that you may see.")
    last_date: str
    name: str = Field(description="A company name to offer, from the domain.")


class UnmatchedPage(BaseModel):
    items: list[UnmatchedPerson | UnmatchedDomain]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


@router.get("/unmatched", response_model=UnmatchedPage)
def unmatched(
    ctx: ApiCtx,
    db: Db,
    group: Annotated[Literal["person", "domain"], Query()] = "person",
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Correspondents (or their domains) of mail linked to no record, newest first."""
    page = list_unmatched(session=db, viewer=ctx.viewer, group=group, cursor=cursor, limit=limit)
    return {
        "items": [group_json(item, group) for item in page.items],
        "next": encode_position(page.next),
    }
