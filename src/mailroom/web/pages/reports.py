"""The activity report page: a chart (server-rendered SVG), its table, and a CSV download.

The numbers come from services.activity_report, the same function as the API's; the page
only reads the form (grouping and range), labels the rows and draws them (web/charts.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from mailroom.db.models import User
from mailroom.errors import BadInput
from mailroom.services.activity_report import GROUPINGS, ActivityReport, activity_report
from mailroom.web.charts import bar_chart
from mailroom.web.deps import Db, PageCtx
from mailroom.web.templating import render

router = APIRouter()
TYPE_WORDS = {
    "lead": "Leads",
    "contact": "Contacts",
    "account": "Accounts",
    "case": "Cases",
    "opportunity": "Opportunities",
}
BY_WORDS = {
    "week": "Week",
    "user": "User",
    "type": "Record type",
    "stage": "Opportunity stage",
}
Text = Annotated[str, Query(max_length=20)]


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(
            f"{name} {value!r} is not a date.", hint="Pick a day, as YYYY-MM-DD."
        ) from None


def _report(db: Db, ctx: PageCtx, by: str, start: str, end: str, user: str) -> ActivityReport:
    return activity_report(
        db,
        viewer=ctx.viewer,
        by=by if by in GROUPINGS else "week",
        start=_day(start, "From"),
        end=_day(end, "To"),
        user_id=int(user) if user.isdigit() else None,
    )


def _label(by: str, row: dict[str, Any]) -> str:
    if by == "user":
        return str(row["name"] or row["email"])
    if by == "week":
        return date.fromisoformat(str(row["week"])).strftime("%d %b %Y")
    if by == "type":
        return TYPE_WORDS.get(str(row["type"]), str(row["type"]))
    return str(row["stage"])


@router.get("/reports/activity")
def activity_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    by: Text = "week",
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
    user: Text = "",
) -> Response:
    report = _report(db, ctx, by, start, end, user)
    users = db.execute(
        select(User.id, User.name, User.email)
        .where(User.company_id == ctx.viewer.company_id)
        .order_by(User.email)
    ).all()
    labels = [_label(report.by, row) for row in report.rows]
    return render(
        request,
        "report_activity.html",
        ctx,
        nav="reports",
        report=report,
        rows=list(zip(labels, report.rows, strict=True)),
        chart=bar_chart(report.rows, labels),
        chart_title=f"Emails sent and received per {BY_WORDS[report.by].lower()}, "
        f"{report.start} to {report.end}",
        by_words=BY_WORDS,
        users=[(uid, name or email) for uid, name, email in users],
        user=user,
    )


@router.get("/reports/activity.csv")
def activity_csv(
    ctx: PageCtx,
    db: Db,
    by: Text = "week",
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
    user: Text = "",
) -> Response:
    report = _report(db, ctx, by, start, end, user)
    who = f"-user-{user}" if user.isdigit() else ""
    name = f"activity-by-{report.by}{who}-{report.start}-{report.end}.csv"
    return Response(
        report.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
