"""`/api/v1/me`: the caller's own user, and the time zone their pages show times in.

API answers stay in UTC (ISO 8601) whatever the zone: it is a setting for the pages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from mailroom.services.account import me_json, set_time_zone
from mailroom.web.api.schemas import ERRORS
from mailroom.web.api.schemas_in import Strict
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["me"], responses=ERRORS)


class MeOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    time_zone: str | None = Field(
        description="The IANA zone the pages show times in; null until chosen (UTC)."
    )


class MeIn(Strict):
    time_zone: str = Field(
        min_length=1, max_length=64, description="An IANA zone name, e.g. Europe/Paris or UTC."
    )


@router.get("/me", response_model=MeOut)
def me(ctx: ApiCtx) -> dict[str, Any]:
    """The user the token belongs to."""
    return me_json(ctx.user)


@router.patch("/me", response_model=MeOut)
def patch_me(ctx: ApiCtx, db: Db, body: MeIn) -> dict[str, Any]:
    """Set the time zone the user's pages show times in (422 for an unknown zone)."""
    set_time_zone(db, user=ctx.user, time_zone=body.time_zone)
    db.commit()
    return me_json(ctx.user)
