"""Admin routes of the API: rules, blocklist, privacy/retention/limit settings, drop address.

Every route answers 404 to members (`access.require_admin`) and works on the caller's own
company only; the services are those `mailroom rules|blocklist|company dropbox` call.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from mailroom.crm import access
from mailroom.crm.retention import retention_preview, set_privacy
from mailroom.dropbox.tokens import drop_address, ensure_token
from mailroom.errors import BadInput
from mailroom.matching.blocklist import add_entry, list_entries, remove_entry
from mailroom.matching.rulebook import (
    add_rule,
    edit_rule,
    get_rule,
    list_rules,
    order_rules,
    remove_rule,
    rule_json,
)
from mailroom.services.mailbox_setup import set_mailbox_limit
from mailroom.services.notices import current_notice_mailbox_id, set_notice_mailbox
from mailroom.web.api.schemas import ERRORS, Page
from mailroom.web.api.schemas_in import (
    BlockIn,
    BlockOut,
    DropboxIn,
    DropboxOut,
    RuleEditIn,
    RuleIn,
    RuleOrderIn,
    RuleOut,
    SettingsIn,
    SettingsOut,
    TrialOut,
)
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.rule_forms import trial

router = APIRouter(tags=["admin"], responses=ERRORS)
RuleName = Annotated[str, Path(min_length=1, max_length=60)]


def _admin(ctx: ApiCtx) -> None:
    access.require_admin(ctx.viewer)


@router.get("/rules", response_model=Page[RuleOut])
def get_rules(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """The company's rules in the order they run."""
    _admin(ctx)
    return {"items": [rule_json(r) for r in list_rules(db, company=ctx.company)], "next": None}


@router.post("/rules", response_model=RuleOut, status_code=201)
def post_rule(ctx: ApiCtx, db: Db, body: RuleIn) -> dict[str, Any]:
    """Add a rule (validated first: a broken pattern is a 422 naming it)."""
    _admin(ctx)
    row = add_rule(db, company=ctx.company, **body.model_dump())
    db.commit()
    return rule_json(row)


@router.patch("/rules/{name}", response_model=RuleOut)
def patch_rule(ctx: ApiCtx, db: Db, name: RuleName, body: RuleEditIn) -> dict[str, Any]:
    """Change a rule in place (validated first); fields left out stay as they were.

    `conditions` replaces all the old ones; a new `action` without `params` starts with
    none. The name and the position stay (move it with PUT /rules/order)."""
    _admin(ctx)
    get_rule(db, company=ctx.company, name=name)  # 404 first, whatever the body
    if all(v is None for v in body.model_dump().values()):
        raise BadInput(
            "Nothing to change.",
            hint="Send at least one of: action, conditions, params, description.",
        )
    row = edit_rule(db, company=ctx.company, name=name, **body.model_dump())
    db.commit()
    return rule_json(row)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(ctx: ApiCtx, db: Db, name: RuleName) -> Response:
    _admin(ctx)
    remove_rule(db, company=ctx.company, name=name)
    db.commit()
    return Response(status_code=204)


@router.put("/rules/order", response_model=Page[RuleOut])
def put_order(ctx: ApiCtx, db: Db, body: RuleOrderIn) -> dict[str, Any]:
    """Run these rules first, in this order; the others follow in their order."""
    _admin(ctx)
    rows = order_rules(db, company=ctx.company, names=body.names)
    db.commit()
    return {"items": [rule_json(r) for r in rows], "next": None}


@router.get("/rules/{name}/test", response_model=Page[TrialOut])
def test_rule(
    ctx: ApiCtx,
    db: Db,
    app: MailroomApp,
    name: RuleName,
    last: Annotated[int, Query(ge=1, le=500, description="The newest N stored messages.")] = 100,
) -> dict[str, Any]:
    """What the rule would do to recent mail; changes nothing."""
    _admin(ctx)
    rows = trial(db, company=ctx.company, blobs=app.blobs, name=name, last=last)
    return {"items": [r.to_json() for r in rows], "next": None}


@router.get("/blocklist", response_model=Page[BlockOut])
def get_blocklist(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """Entries in force; `builtin` ones (the company's domains) cannot be removed."""
    _admin(ctx)
    return {"items": [v.to_json() for v in list_entries(db, company=ctx.company)], "next": None}


@router.post("/blocklist", response_model=BlockOut, status_code=201)
def post_block(ctx: ApiCtx, db: Db, body: BlockIn) -> dict[str, Any]:
    _admin(ctx)
    row = add_entry(db, company=ctx.company, entry=body.entry, user_email=body.user or None)
    db.commit()
    return {"entry": row.entry, "user": body.user or None, "builtin": False}


@router.delete("/blocklist", status_code=204)
def delete_block(
    ctx: ApiCtx,
    db: Db,
    entry: Annotated[str, Query(min_length=1, max_length=320)],
    user: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    _admin(ctx)
    remove_entry(db, company=ctx.company, entry=entry, user_email=user or None)
    db.commit()
    return Response(status_code=204)


def _settings(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    privacy = access.privacy_of(db, ctx.company.id)
    return {
        "visibility": privacy.visibility,
        "retention_days": privacy.retention_days,
        "retention_enabled": privacy.retention_enabled,
        "retention_would_delete": retention_preview(db, company_id=ctx.company.id),
        "mailbox_limit": ctx.company.mailbox_limit,
        "notice_mailbox_id": current_notice_mailbox_id(session=db, company_id=ctx.company.id),
    }


@router.get("/settings", response_model=SettingsOut)
def get_settings(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """Privacy mode, retention, the company's mailbox limit and notice mailbox."""
    _admin(ctx)
    return _settings(ctx, db)


@router.patch("/settings", response_model=SettingsOut)
def patch_settings(ctx: ApiCtx, db: Db, body: SettingsIn) -> dict[str, Any]:
    """Change only the fields given."""
    _admin(ctx)
    set_privacy(
        db,
        company_id=ctx.company.id,
        visibility=body.visibility,
        retention_days=body.retention_days,
        retention_enabled=body.retention_enabled,
    )
    if body.no_mailbox_limit or body.mailbox_limit is not None:
        limit = None if body.no_mailbox_limit else body.mailbox_limit
        set_mailbox_limit(session=db, company_id=ctx.company.id, limit=limit)
    if body.no_notice_mailbox or body.notice_mailbox_id is not None:
        chosen = None if body.no_notice_mailbox else body.notice_mailbox_id
        set_notice_mailbox(session=db, company_id=ctx.company.id, mailbox_id=chosen)
    db.commit()
    return _settings(ctx, db)


@router.get("/dropbox", response_model=DropboxOut)
def get_dropbox(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """The company's private BCC/forward address (made on first use)."""
    _admin(ctx)
    token = ensure_token(db, company=ctx.company)
    db.commit()
    return {"address": drop_address(token.token), "unknown_senders": token.unknown_senders}


@router.post("/dropbox", response_model=DropboxOut)
def post_dropbox(ctx: ApiCtx, db: Db, body: DropboxIn) -> dict[str, Any]:
    """Rotate the address (the old one stops at once) and/or set the unknown-senders policy."""
    _admin(ctx)
    token = ensure_token(
        db, company=ctx.company, rotate=body.rotate, unknown_senders=body.unknown_senders
    )
    db.commit()
    return {"address": drop_address(token.token), "unknown_senders": token.unknown_senders}
