"""Admin → Rules: list in order, add (conditions + one action), edit in place (same name,
same position; GET /{name}/edit prefills the form), remove, reorder, and
"Test on recent mail" — for a saved rule or for the one being written — which shows what
it would do to the newest stored messages and changes nothing (web.rule_forms.trial).

Every route calls `access.require_admin` (404 for members) and works on the admin's own
company only: rules are found by name within `ctx.company`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.crm import access
from mailroom.errors import MailroomError
from mailroom.matching.rulebook import (
    TrialRow,
    add_rule,
    edit_rule,
    get_rule,
    list_rules,
    order_rules,
    remove_rule,
    rule_json,
)
from mailroom.matching.rules import ACTIONS, CREATE_TYPES
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.rule_forms import CONDITION_FIELDS, RuleForm, form_of, trial
from mailroom.web.templating import render

router = APIRouter(prefix="/admin/rules")
RECENT = 100


def _page(
    request: Request, ctx: PageCtx, db: Db, *, status_code: int = 200, **values: Any
) -> Response:
    rules = [rule_json(r) for r in list_rules(db, company=ctx.company)]
    defaults: dict[str, Any] = {"error": None, "trial": None, "trial_name": "", "form": {}}
    defaults["editing"] = None
    defaults["stored"] = None  # a run on stored mail (web/pages/admin_rules_stored.py)
    return render(
        request,
        "admin_rules.html",
        ctx,
        nav="admin",
        status_code=status_code,
        rules=rules,
        actions=ACTIONS,
        record_types=sorted(set(CREATE_TYPES.values()) | {"opportunity", "account"}),
        condition_fields=CONDITION_FIELDS,
        recent=RECENT,
        **(defaults | values),
    )


@router.get("")
def rules_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    return _page(request, ctx, db)


def _trial_view(rows: list[TrialRow]) -> dict[str, Any]:
    hits = [r for r in rows if r.matched]
    return {"hits": hits, "total": len(rows)}


@router.post("")
def add_rule_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    fields: Annotated[RuleForm, Form()],
) -> Response:
    """Add the rule, or (do=test) show what it would do to recent mail without saving."""
    access.require_admin(ctx.viewer)
    form = fields.shown()
    try:
        rule = fields.rule()
        if fields.do == "test":
            rows = trial(
                db,
                company=ctx.company,
                blobs=app.blobs,
                name=rule["name"],
                last=RECENT,
                new_rule=rule,
            )
            return _page(
                request, ctx, db, trial=_trial_view(rows), trial_name=rule["name"], form=form
            )
        add_rule(db, company=ctx.company, **rule)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        return _page(request, ctx, db, status_code=422, error=exc, form=form)
    return RedirectResponse("/admin/rules?notice=rule-added", status_code=303)


@router.get("/{name}/edit")
def edit_page(request: Request, ctx: PageCtx, db: Db, name: str) -> Response:
    """The rules page with the Edit form filled in with the saved rule."""
    access.require_admin(ctx.viewer)
    row = get_rule(db, company=ctx.company, name=name)
    return _page(request, ctx, db, editing=row.name, form=form_of(row))


@router.post("/{name}/edit")
def edit_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    name: str,
    fields: Annotated[RuleForm, Form()],
) -> Response:
    """Save the changed rule (same name, same place), or (do=test) try the change first.

    The form holds the whole rule: conditions left empty are dropped."""
    access.require_admin(ctx.viewer)
    row = get_rule(db, company=ctx.company, name=name)
    form = fields.shown() | {"name": row.name, "position": str(row.position)}
    try:
        rule = fields.rule()
        edited = {k: rule[k] for k in ("action", "conditions", "params", "description")}
        if fields.do == "test":
            rows = trial(
                db, company=ctx.company, blobs=app.blobs, name=row.name, last=RECENT, edited=edited
            )
            view = _trial_view(rows)
            return _page(
                request, ctx, db, trial=view, trial_name=row.name, form=form, editing=row.name
            )
        edit_rule(db, company=ctx.company, name=row.name, **edited)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        return _page(request, ctx, db, status_code=422, error=exc, form=form, editing=name)
    return RedirectResponse("/admin/rules?notice=rule-changed", status_code=303)


@router.post("/{name}/remove")
def remove_route(ctx: Csrf, db: Db, name: str) -> Response:
    access.require_admin(ctx.viewer)
    remove_rule(db, company=ctx.company, name=name)
    db.commit()
    return RedirectResponse("/admin/rules?notice=rule-removed", status_code=303)


@router.post("/{name}/move")
def move_route(
    ctx: Csrf, db: Db, name: str, to: Annotated[str, Form(max_length=5)] = "up"
) -> Response:
    """Move a rule one place up or down (rules run from the top)."""
    access.require_admin(ctx.viewer)
    get_rule(db, company=ctx.company, name=name)
    names = [r.name for r in list_rules(db, company=ctx.company)]
    where = names.index(name)
    other = where - 1 if to == "up" else where + 1
    if 0 <= other < len(names):
        names[where], names[other] = names[other], names[where]
        order_rules(db, company=ctx.company, names=names)
        db.commit()
    return RedirectResponse("/admin/rules?notice=rules-ordered", status_code=303)


@router.post("/{name}/test")
def test_route(request: Request, ctx: Csrf, db: Db, app: MailroomApp, name: str) -> Response:
    """What the saved rule would do to recent mail; nothing is changed."""
    access.require_admin(ctx.viewer)
    rows = trial(db, company=ctx.company, blobs=app.blobs, name=name, last=RECENT)
    return _page(request, ctx, db, trial=_trial_view(rows), trial_name=name)
