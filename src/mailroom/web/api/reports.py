"""`/api/v1/reports/activity`: the activity report as JSON (`{"rows": [...]}`) or CSV.

CSV is chosen by `format=csv` or by `Accept: text/csv`; both carry the same rows
(services.activity_report, where the counting and who may see what are decided).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from mailroom.services.activity_report import activity_report
from mailroom.web.api.schemas import ERRORS
from mailroom.web.deps import ApiCtx, Db

router = APIRouter(tags=["reports"], responses=ERRORS)


class ActivityRow(BaseModel):
    """One row: the group it counts (one of user_id/email/name, week, type, stage) and the
    messages sent (outbound) and received (inbound) in it."""

    user_id: int | None = Field(default=None, description="by=user: the user's id.")
    email: str | None = Field(default=None, description="by=user: their sign-in address.")
    name: str | None = Field(default=None, description="by=user: their name.")
    week: str | None = Field(default=None, description="by=week: the Monday (YYYY-MM-DD, UTC).")
    type: str | None = Field(default=None, description="by=type: the record type.")
    stage: str | None = Field(default=None, description="by=stage: the opportunity stage.")
    sent: int
    received: int
    total: int


class ActivityOut(BaseModel):
    """The activity report's rows."""

    rows: list[ActivityRow]


@router.get(
    "/reports/activity",
    response_model=ActivityOut,
    response_model_exclude_none=True,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_activity(
    request: Request,
    ctx: ApiCtx,
    db: Db,
    by: Annotated[Literal["user", "week", "type", "stage"], Query()] = "week",
    start: Annotated[date | None, Query(alias="from", description="First day (UTC).")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (UTC).")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    user_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only this user's mail (per user per week).")
    ] = None,
) -> Any:
    """Logged mail sent and received per user, ISO week, record type or opportunity stage,
    from `from` to `to` (both included; default the last 12 weeks), counted as you may see
    it: admins count all the company's logged mail, members the mail they may see."""
    report = activity_report(db, viewer=ctx.viewer, by=by, start=start, end=end, user_id=user_id)
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        name = f"activity-by-{by}-{report.start}-{report.end}.csv"
        return Response(
            report.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {"rows": report.rows}
