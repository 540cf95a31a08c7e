"""Admin → Matching: the matching settings that were CLI only (`mailroom rules settings`):
log list and automatic mail or not, the confidential subject words (one per line), the
opportunity policy, and the records created per sender and day (services.matching_settings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import MailroomError
from mailroom.services.matching_settings import change_matching_settings, matching_settings
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import render

router = APIRouter(prefix="/admin")
POLICY_WORDS = {
    "all": "every open opportunity of the account or contact",
    "recent": "only the most recently active open opportunity",
    "none": "no opportunity (link them by hand)",
}


@router.get("/matching")
def matching_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    """The settings form, filled in with the current values."""
    values = matching_settings(db, viewer=ctx.viewer)
    db.commit()  # the defaults row, made on first read
    return render(
        request, "admin_matching.html", ctx, nav="admin", values=values, policies=POLICY_WORDS
    )


@router.post("/matching")
def matching_save(
    request: Request,
    ctx: Csrf,
    db: Db,
    opportunity_policy: Annotated[str, Form(max_length=20)],
    confidential: Annotated[str, Form(max_length=5000)] = "",
    max_created_per_sender: Annotated[int, Form(ge=0, le=10_000)] = 5,
    log_bulk: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Save the form; a bad value shows the form again with what to fix (422)."""
    try:
        change_matching_settings(
            db,
            viewer=ctx.viewer,
            opportunity_policy=opportunity_policy,
            log_bulk=log_bulk == "yes",
            confidential=confidential.splitlines(),
            max_created_per_sender=max_created_per_sender,
        )
        db.commit()
    except MailroomError as exc:
        db.rollback()
        values = matching_settings(db, viewer=ctx.viewer)
        return render(
            request,
            "admin_matching.html",
            ctx,
            nav="admin",
            status_code=422,
            values=values,
            policies=POLICY_WORDS,
            error=exc,
        )
    return RedirectResponse("/admin/matching?notice=settings-saved", status_code=303)
