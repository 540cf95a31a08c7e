"""Admin → Rules: list in order, add (conditions + one action), remove, reorder, and
"Test on recent mail" — for a saved rule or for the one being written — which shows what
it would do to the newest stored messages and changes nothing (web.rule_forms.trial).

Every route calls `access.require_admin` (404 for members) and works on the admin's own
company only: rules are found by name within `ctx.company`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import BadInput, MailroomError
from mailroom.matching.rulebook import (
    TrialRow,
    add_rule,
    get_rule,
    list_rules,
    order_rules,
    remove_rule,
    rule_json,
)
from mailroom.matching.rules import ACTIONS, CREATE_TYPES
from mailroom.security import access
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.rule_forms import CONDITION_FIELDS, conditions_of, params_of, trial
from mailroom.web.templating import render

router = APIRouter(prefix="/admin/rules")
RECENT = 100
Name = Annotated[str, Form(max_length=60)]
Opt = Annotated[str, Form(max_length=500)]


def _page(
    request: Request, ctx: PageCtx, db: Db, *, status_code: int = 200, **values: Any
) -> Response:
    rules = [rule_json(r) for r in list_rules(db, company=ctx.company)]
    defaults: dict[str, Any] = {"error": None, "trial": None, "trial_name": "", "form": {}}
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
    name: Name,
    action: Annotated[str, Form(max_length=20)],
    description: Opt = "",
    direction: Opt = "",
    mailbox: Opt = "",
    from_: Annotated[str, Form(alias="from", max_length=500)] = "",
    to: Opt = "",
    cc: Opt = "",
    subject_contains: Opt = "",
    subject_matches: Opt = "",
    body_contains: Opt = "",
    body_matches: Opt = "",
    header: Opt = "",
    header_matches: Opt = "",
    has_attachment: Annotated[str, Form(max_length=3)] = "",
    record_type: Annotated[str, Form(max_length=20)] = "lead",
    patterns: Annotated[str, Form(max_length=5000)] = "",
    owner: Opt = "",
    tag: Opt = "",
    position: Annotated[str, Form(max_length=4)] = "",
    do: Annotated[str, Form(max_length=10)] = "add",
) -> Response:
    """Add the rule, or (do=test) show what it would do to recent mail without saving."""
    access.require_admin(ctx.viewer)
    values = {
        "direction": direction,
        "mailbox": mailbox,
        "from": from_,
        "to": to,
        "cc": cc,
        "subject_contains": subject_contains,
        "subject_matches": subject_matches,
        "body_contains": body_contains,
        "body_matches": body_matches,
        "header": header,
        "header_matches": header_matches,
    }
    form = values | {"name": name, "action": action, "description": description}
    form |= {"has_attachment": has_attachment, "record_type": record_type}
    form |= {"patterns": patterns, "owner": owner, "tag": tag, "position": position}
    try:
        if position.strip() and not position.strip().isdigit():
            raise BadInput("The position must be a whole number.", hint="1 runs first.")
        rule: dict[str, Any] = {
            "name": name.strip(),
            "action": action,
            "conditions": conditions_of(values, has_attachment),
            "params": params_of(
                action, record_type=record_type, patterns=patterns, owner=owner, tag=tag
            ),
            "description": description.strip(),
            "position": int(position) if position.strip() else None,
        }
        if do == "test":
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
