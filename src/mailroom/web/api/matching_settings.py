"""`/api/v1/matching-settings`: the company's matching settings (admins; 404 for members),
as `mailroom rules settings` and Admin → Matching show them (services.matching_settings)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mailroom.services.matching_settings import change_matching_settings, matching_settings
from mailroom.web.api.schemas import ERRORS
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["admin"], responses=ERRORS)


class MatchingSettingsOut(BaseModel):
    """Which mail is logged, and how opportunities link."""

    opportunity_policy: str
    log_bulk: bool
    confidential_subjects: list[str]
    max_created_per_sender: int


class MatchingSettingsIn(BaseModel):
    """The settings to change; the others stay."""

    model_config = ConfigDict(extra="forbid")
    opportunity_policy: Literal["all", "recent", "none"] | None = None
    log_bulk: bool | None = None
    confidential_subjects: list[str] | None = Field(None, max_length=100)
    max_created_per_sender: int | None = Field(None, ge=0, le=10_000)


@router.get("/matching-settings", response_model=MatchingSettingsOut)
def get_matching_settings(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """The company's matching settings."""
    values = matching_settings(db, viewer=ctx.viewer)
    db.commit()
    return values


@router.patch("/matching-settings", response_model=MatchingSettingsOut)
def patch_matching_settings(ctx: ApiCtx, db: Db, body: MatchingSettingsIn) -> dict[str, Any]:
    """Change the settings given; they apply to mail stored from now on."""
    values = change_matching_settings(
        db,
        viewer=ctx.viewer,
        opportunity_policy=body.opportunity_policy,
        log_bulk=body.log_bulk,
        confidential=body.confidential_subjects,
        max_created_per_sender=body.max_created_per_sender,
    )
    db.commit()
    return values
