"""`/api/v1/rules/{name}/stored`: run a rule on stored mail (admins; 404 for members).

GET is the preview (how many stored messages the run would change; nothing changes), POST
the run (200 with the result, or 202 while it runs in the background on a large mail
store), GET `/status` the last run's progress. services.stored_rules decides what changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mailroom.errors import NotFound
from mailroom.services.stored_rules import preview_rule_on_stored, run_rule_on_stored, run_status
from mailroom.web.api.schemas import ERRORS
from mailroom.web.deps import ApiCtx, Db, MailroomApp

router = APIRouter(tags=["rules"], responses=ERRORS)
RuleName = Annotated[str, Path(min_length=1, max_length=60)]


class StoredRunOut(BaseModel):
    """A rule's preview or run on stored mail: messages scanned of `total`, and changed."""

    rule: str
    action: str
    total: int
    scanned: int
    affected: int
    state: str
    dry_run: bool
    background: bool
    error: str | None


@router.get("/rules/{name}/stored", response_model=StoredRunOut)
def preview_stored(ctx: ApiCtx, db: Db, app: MailroomApp, name: RuleName) -> dict[str, Any]:
    """How many stored messages running the rule would change (`affected`); changes nothing."""
    return preview_rule_on_stored(db, viewer=ctx.viewer, name=name, blobs=app.blobs).to_json()


@router.post(
    "/rules/{name}/stored",
    response_model=StoredRunOut,
    responses={202: {"model": StoredRunOut, "description": "Running in the background."}},
)
def run_stored(ctx: ApiCtx, db: Db, app: MailroomApp, name: RuleName) -> Any:
    """Run the rule on stored mail; a second run changes nothing (`affected` 0)."""
    db.commit()
    status = run_rule_on_stored(app, viewer=ctx.viewer, name=name, background=True)
    if status.state == "running":
        return JSONResponse(status.to_json(), status_code=202)
    return status.to_json()


@router.get("/rules/{name}/stored/status", response_model=StoredRunOut)
def stored_status(ctx: ApiCtx, app: MailroomApp, name: RuleName) -> dict[str, Any]:
    """The progress of the rule's last run on stored mail (since `serve` started)."""
    status = run_status(viewer=ctx.viewer, name=name, app=app)
    if status is None:
        raise NotFound(f"Rule {name} has not run on stored mail.", hint="POST to run it.")
    return status.to_json()
