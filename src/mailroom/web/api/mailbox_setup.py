"""`/api/v1/mailboxes` writes: connect, test, change the password, set SMTP.

The same service functions as the CLI and "My mailboxes" (services.mailbox_setup):
everything logs in before it is saved; answers never contain a password.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from mailroom.errors import HostNotAllowed, MailroomError, NotFound, RateLimited
from mailroom.services.mailbox_checks import SmtpInput, test_mailbox
from mailroom.services.mailbox_setup import (
    IncomingChange,
    NewMailbox,
    connect_mailbox,
    edit_incoming,
    set_outgoing,
    since_of,
)
from mailroom.services.mailboxes import get_mailbox_json, sync_now
from mailroom.web.api.schemas import ERRORS, MailboxOut
from mailroom.web.api.schemas_in import MailboxEditIn, MailboxIn, SmtpIn, TestOut
from mailroom.web.deps import ApiCtx, Db, MailroomApp, host_policy

router = APIRouter(tags=["mailboxes"], responses=ERRORS)
MailboxId = Annotated[int, Path(ge=1, le=2**62)]


def _smtp(given: SmtpIn | None) -> SmtpInput | None:
    if given is None:
        return None
    return SmtpInput(
        host=given.host,
        port=given.port,
        security=given.security,
        username=given.username or None,
        password=given.password,
    )


@router.post("/mailboxes", response_model=MailboxOut, status_code=201)
def create(
    request: Request, ctx: ApiCtx, db: Db, app: MailroomApp, body: MailboxIn
) -> dict[str, Any]:
    """Connect one of your mailboxes (tested first; 502 with the fix if it cannot log in)."""
    new = NewMailbox(
        host=body.host,
        port=body.port,
        password=body.password,
        username=body.username or None,
        protocol=body.protocol,
        security=body.security,
        allow_self_signed=body.allow_self_signed,
        smtp=_smtp(body.smtp),
        folders=body.folders or (),
        aliases=body.aliases or (),
        since=since_of(body.backfill),
    )
    network = host_policy(request, ctx)
    mailbox_id = connect_mailbox(session=db, app=app, user=ctx.user, new=new, network=network)
    view = get_mailbox_json(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer)
    sync_now(session=db, app=app, mailbox_id=mailbox_id, viewer=ctx.viewer, here=True)
    return view


@router.post("/mailboxes/{id}/test", response_model=TestOut)
def test(request: Request, ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId) -> dict[str, Any]:
    """Log in with the stored settings, IMAP/POP3 and SMTP; `ok` false with the fix."""
    network = host_policy(request, ctx)
    try:
        found = test_mailbox(session=db, app=app, mailbox_id=id, viewer=ctx.viewer, network=network)
    except (NotFound, HostNotAllowed, RateLimited):
        raise  # not the caller's mailbox: 404, as every other route; 422 and 429 as well
    except MailroomError as exc:
        return {"ok": False, "lines": [], "error": exc.message, "hint": exc.hint}
    return {"ok": True, "lines": found.lines()}


@router.patch("/mailboxes/{id}", response_model=MailboxOut)
def edit(
    request: Request, ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId, body: MailboxEditIn
) -> dict[str, Any]:
    """Change the password (tested first); a failed mailbox is enabled and synced again."""
    change = IncomingChange(password=body.password)
    network = host_policy(request, ctx)
    edit_incoming(
        session=db, app=app, mailbox_id=id, change=change, viewer=ctx.viewer, network=network
    )
    view = get_mailbox_json(session=db, mailbox_id=id, viewer=ctx.viewer)
    sync_now(session=db, app=app, mailbox_id=id, viewer=ctx.viewer, here=True)
    return view


@router.put("/mailboxes/{id}/smtp")
def set_smtp(
    request: Request, ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId, body: SmtpIn
) -> dict[str, Any]:
    """Set how the mailbox sends (tested first); the provider's limits come back."""
    smtp = _smtp(body)
    assert smtp is not None
    network = host_policy(request, ctx)
    return set_outgoing(
        session=db, app=app, mailbox_id=id, smtp=smtp, viewer=ctx.viewer, network=network
    )
