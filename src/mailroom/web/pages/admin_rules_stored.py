"""Admin → Rules → "Run on stored mail": the preview count, the run, its progress.

Preview (POST, so it is never prefetched) shows how many stored messages the rule would
change; Run applies it (services.stored_rules: inline for up to 2,000 stored messages,
else in the background) and the status card polls `/status` with htmx until it is done.
Members get 404, as on every admin page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailroom.crm import access
from mailroom.errors import NotFound
from mailroom.services.stored_rules import preview_rule_on_stored, run_rule_on_stored, run_status
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.pages.admin_rules import _page
from mailroom.web.templating import render

router = APIRouter(prefix="/admin/rules")


@router.post("/{name}/stored/preview")
def preview_route(request: Request, ctx: Csrf, db: Db, app: MailroomApp, name: str) -> Response:
    """How many stored messages the rule would change; nothing is changed."""
    status = preview_rule_on_stored(db, viewer=ctx.viewer, name=name, blobs=app.blobs)
    return _page(request, ctx, db, stored=status.to_json())


@router.post("/{name}/stored/run")
def run_route(request: Request, ctx: Csrf, db: Db, app: MailroomApp, name: str) -> Response:
    """Run the rule on stored mail (in the background for a large mail store)."""
    db.commit()  # end the request's read before the run's own short transactions
    status = run_rule_on_stored(app, viewer=ctx.viewer, name=name, background=True)
    return _page(request, ctx, db, stored=status.to_json())


@router.get("/{name}/stored/status")
def status_route(request: Request, ctx: PageCtx, app: MailroomApp, name: str) -> Response:
    """The run's progress card (polled while it runs)."""
    access.require_admin(ctx.viewer)
    status = run_status(viewer=ctx.viewer, name=name, app=app)
    if status is None:
        raise NotFound(f"Rule {name} has not run on stored mail.", hint="Open Admin → Rules.")
    return render(request, "_stored_run.html", ctx, stored=status.to_json())
