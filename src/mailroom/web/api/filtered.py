"""Say what was filtered, in the API (services.filtered_mail): a record's skipped mail and
the mail hidden from the caller by privacy; the mail a blocklist entry already logged,
counted, then removed from the timelines (admins; 404 for members)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from mailroom.crm import access
from mailroom.services.filtered_mail import (
    blocked_logged,
    filtered_for_record,
    filtered_messages,
    remove_blocked_logged,
)
from mailroom.web.api.schemas import ERRORS
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["filtered"], responses=ERRORS)
RecordType = Literal["lead", "contact", "account", "case", "opportunity"]
RecordId = Annotated[int, Path(ge=1, le=2**62)]
Entry = Annotated[str, Query(min_length=1, max_length=320, description="Address or @domain.")]
UserEmail = Annotated[str, Query(max_length=320, description="Only this user's entry.")]


class SkipCount(BaseModel):
    """How many of the record's messages one reason skipped."""

    reason: str
    words: str
    messages: int


class SkippedMessage(BaseModel):
    """One skipped message of the record and why."""

    id: int
    message_id: str
    date: str | None
    subject: str
    from_: str | None = Field(alias="from")
    reason: str
    words: str
    detail: str


class FilteredOut(BaseModel):
    """A record's mail that is not on its timeline (for you)."""

    skipped: list[SkipCount]
    hidden_by_privacy: int
    items: list[SkippedMessage]


class BlockedLoggedOut(BaseModel):
    """The logged mail a blocklist entry concerns: counted, or removed."""

    entry: str
    messages: int = 0
    removed: int = 0


class BlockedLoggedIn(BaseModel):
    """Which entry's already logged mail to remove."""

    entry: str = Field(min_length=1, max_length=320)
    user: str = Field(default="", max_length=320)


@router.get("/records/{type}/{id}/filtered", response_model=FilteredOut)
def get_filtered(ctx: ApiCtx, db: Db, type: RecordType, id: RecordId) -> dict[str, Any]:
    """The record's messages that were skipped (per reason, and the newest 100 with why),
    and how many of its logged messages strict privacy hides from you."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    summary = filtered_for_record(db, viewer=ctx.viewer, record=record)
    return summary.to_json() | {"items": filtered_messages(db, viewer=ctx.viewer, record=record)}


@router.get("/blocklist/logged", response_model=BlockedLoggedOut)
def get_blocked_logged(ctx: ApiCtx, db: Db, entry: Entry, user: UserEmail = "") -> dict[str, Any]:
    """How many logged messages have this blocked address or @domain as a participant."""
    count = blocked_logged(db, viewer=ctx.viewer, entry=entry, user_email=user or None)
    return {"entry": entry, "messages": count}


@router.post("/blocklist/logged", response_model=BlockedLoggedOut)
def post_blocked_logged(ctx: ApiCtx, db: Db, body: BlockedLoggedIn) -> dict[str, Any]:
    """Remove that mail from the timelines (skipped as `filter:blocklist`, automatic links
    removed, hand-made links kept); a second call removes nothing."""
    removed = remove_blocked_logged(
        db, viewer=ctx.viewer, entry=body.entry, user_email=body.user or None
    )
    db.commit()
    return {"entry": body.entry, "removed": removed}
