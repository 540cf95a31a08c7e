"""Aliases: approve, reject, confirm by mail, and what each alias's state is (issue 11).

An alias (another address a mailbox's owner sends as) counts as the owner's own address
(access control, matching) only once approved; until then it is a claim. Who approves:
- inside the company's domains (or their subdomains), an admin: the approval page, `mailroom
  mailbox approve-alias` / `reject-alias`, `POST /api/v1/mailboxes/{id}/aliases/approve`
  and `…/reject`;
- outside them, whoever reads the alias's mail: a confirmation mail from the company's
  notice mailbox (outbox/notices.py) carries `{public_url}/aliases/confirm?token=…`; the
  page it opens has a Confirm button (a POST: a mail scanner that follows links confirms
  nothing). The token is random, stored as its SHA-256 only, works once and ends after
  7 days. Without a notice mailbox nothing is sent and the alias's state says so; an admin
  may still approve it by hand.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer, require_admin
from mailroom.db.models import CompanyDomain, Mailbox, MailboxAlias, User
from mailroom.db.times import as_utc
from mailroom.errors import BadInput, NotFound
from mailroom.mail.addresses import normalise
from mailroom.mailboxes.store import check_aliases
from mailroom.outbox.notices import NoticeOutcome, notice_mailbox, send_notice
from mailroom.services.lookup import load_mailbox

CONFIRM_FOR = timedelta(days=7)
CONFIRM_PATH = "/aliases/confirm"

APPROVED = "approved"
AWAITING_ADMIN = "awaiting_admin"
AWAITING_CONFIRMATION = "awaiting_confirmation"
CONFIRMATION_EXPIRED = "confirmation_expired"
NOT_SENT = "confirmation_not_sent"

STATE_WORDS = {
    APPROVED: "Approved",
    AWAITING_ADMIN: "Waiting for an admin's approval",
    AWAITING_CONFIRMATION: "Confirmation mail sent: open its link to confirm",
    CONFIRMATION_EXPIRED: "The confirmation link expired: send it again",
    NOT_SENT: "No confirmation mail sent yet: send it",
}
NO_NOTICE_MAILBOX_WORDS = (
    "Not confirmed: no confirmation mail can be sent, because the company has no notice "
    "mailbox (an admin chooses one in Admin → Settings, or approves the alias by hand)"
)

BAD_LINK = (
    "This confirmation link does not work: it was used already, a newer one replaced it, "
    "or it expired."
)
BAD_LINK_HINT = "Ask the mailbox's owner to send the confirmation again from its settings page."


@dataclass(frozen=True, slots=True)
class AliasView:
    """One alias as its owner and the admins see it."""

    mailbox_id: int
    mailbox_address: str
    owner: str
    address: str
    state: str
    words: str
    inside: bool


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """What a confirmation link confirms (shown before the Confirm button)."""

    address: str
    mailbox_address: str
    owner: str


def token_hash(token: str) -> str:
    """The stored form of a confirmation token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def company_domains(session: Session, *, company_id: int) -> frozenset[str]:
    """The company's own domains."""
    rows = session.scalars(
        select(CompanyDomain.domain).where(CompanyDomain.company_id == company_id)
    )
    return frozenset(rows)


def is_inside(address: str, domains: frozenset[str]) -> bool:
    """Whether `address` is in one of `domains` or a subdomain of one."""
    domain = address.rpartition("@")[2]
    while domain:
        if domain in domains:
            return True
        _, _, domain = domain.partition(".")
    return False


def state_of(alias: MailboxAlias, *, inside: bool, now: datetime | None = None) -> str:
    """The alias's state (one of STATE_WORDS' keys)."""
    if alias.approved:
        return APPROVED
    if inside:
        return AWAITING_ADMIN
    if alias.confirm_sent_at is None:
        return NOT_SENT
    expires = as_utc(alias.confirm_expires_at)
    if expires is None or expires <= _now(now):
        return CONFIRMATION_EXPIRED
    return AWAITING_CONFIRMATION


def alias_views(
    session: Session, *, mailbox: Mailbox, now: datetime | None = None
) -> list[AliasView]:
    """Every alias of `mailbox` with its state, in address order."""
    domains = company_domains(session, company_id=mailbox.company_id)
    owner = session.get(User, mailbox.user_id)
    can_mail = notice_mailbox(session, company_id=mailbox.company_id) is not None
    views = []
    for alias in sorted(mailbox.aliases, key=lambda a: a.address):
        inside = is_inside(alias.address, domains)
        state = state_of(alias, inside=inside, now=now)
        words = STATE_WORDS[state]
        if state in (NOT_SENT, CONFIRMATION_EXPIRED) and not can_mail:
            words = NO_NOTICE_MAILBOX_WORDS
        views.append(
            AliasView(
                mailbox_id=mailbox.id,
                mailbox_address=mailbox.address,
                owner=owner.email if owner is not None else "",
                address=alias.address,
                state=state,
                words=words,
                inside=inside,
            )
        )
    return views


def pending_aliases(session: Session, *, viewer: Viewer) -> list[AliasView]:
    """Every alias of the viewer's company not yet approved (admins only)."""
    require_admin(viewer)
    boxes = session.scalars(
        select(Mailbox)
        .join(MailboxAlias, MailboxAlias.mailbox_id == Mailbox.id)
        .where(Mailbox.company_id == viewer.company_id, MailboxAlias.approved.is_(False))
        .distinct()
        .order_by(Mailbox.id)
    )
    return [
        view
        for box in boxes
        for view in alias_views(session, mailbox=box)
        if view.state != APPROVED
    ]


def request_confirmations(
    session: Session, *, mailbox: Mailbox, public_url: str, now: datetime | None = None
) -> dict[str, NoticeOutcome]:
    """Mail a confirmation link to each pending alias outside the company's domains.

    In the caller's transaction (flushed, not committed; the outbox sends after the commit).
    Returns each address's outcome; `NO_MAILBOX` leaves the alias pending, not sent.
    """
    domains = company_domains(session, company_id=mailbox.company_id)
    return {
        alias.address: _send_confirmation(session, alias=alias, public_url=public_url, now=now)
        for alias in mailbox.aliases
        if not alias.approved and not is_inside(alias.address, domains)
    }


def _send_confirmation(
    session: Session, *, alias: MailboxAlias, public_url: str, now: datetime | None
) -> NoticeOutcome:
    mailbox = alias.mailbox
    owner = session.get(User, mailbox.user_id)
    token = secrets.token_urlsafe(32)
    hashed = token_hash(token)
    link = f"{public_url.rstrip('/')}{CONFIRM_PATH}?token={token}"
    outcome = send_notice(
        session,
        company_id=mailbox.company_id,
        key=f"alias-confirm:{alias.id}:{hashed[:16]}",
        to=[alias.address],
        subject=f"Confirm {alias.address} as an address of {owner.email if owner else '?'}",
        text=(
            f"{owner.email if owner else 'Someone'} added {alias.address} to their mailbox "
            f"{mailbox.address} in Mailroom, as another address they send as.\n\n"
            f"If that is right, open this link and press Confirm (within 7 days):\n{link}\n\n"
            "If it is not, ignore this mail: nothing changes until someone confirms.\n"
        ),
        now=now,
    )
    if outcome is NoticeOutcome.QUEUED:
        alias.confirm_token_hash = hashed
        alias.confirm_sent_at = _now(now)
        alias.confirm_expires_at = _now(now) + CONFIRM_FOR
    return outcome


def _alias_of(mailbox: Mailbox, address: str) -> MailboxAlias:
    wanted = normalise(address)
    alias = next((a for a in mailbox.aliases if a.address == wanted), None)
    if alias is None:
        raise NotFound(f"Mailbox {mailbox.id} has no alias {address!r}.")
    return alias


def resend_confirmation(
    *,
    session: Session,
    mailbox_id: int,
    address: str,
    public_url: str,
    viewer: Viewer | None = None,
    now: datetime | None = None,
) -> None:
    """Mail a new confirmation link for an alias outside the company's domains; committed.

    The previous link stops working. `BadInput` says why nothing was sent (an alias an
    admin approves, one already approved, no notice mailbox).
    """
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    alias = _alias_of(mailbox, address)
    if alias.approved:
        raise BadInput(f"{alias.address} is already approved.")
    if is_inside(alias.address, company_domains(session, company_id=mailbox.company_id)):
        raise BadInput(
            f"{alias.address} is in your company's domains: an admin approves it, no mail is sent.",
            hint="Ask an admin (Admin → Aliases).",
        )
    outcome = _send_confirmation(session, alias=alias, public_url=public_url, now=now)
    if outcome is not NoticeOutcome.QUEUED:
        session.rollback()
        raise BadInput(
            f"No confirmation mail was sent to {alias.address}: "
            + (
                "your company has no notice mailbox."
                if outcome is NoticeOutcome.NO_MAILBOX
                else "the notice mailbox refused it."
            ),
            hint="An admin chooses the notice mailbox in Admin → Settings, or approves the "
            "alias by hand (Admin → Aliases).",
        )
    session.commit()


def _by_token(session: Session, token: str, now: datetime | None) -> MailboxAlias:
    query = select(MailboxAlias).where(MailboxAlias.confirm_token_hash == token_hash(token))
    alias = session.scalar(query) if token else None
    expires = as_utc(alias.confirm_expires_at) if alias is not None else None
    if alias is None or alias.approved or expires is None or expires <= _now(now):
        raise NotFound(BAD_LINK, hint=BAD_LINK_HINT)
    return alias


def peek_confirmation(
    *, session: Session, token: str, now: datetime | None = None
) -> PendingConfirmation:
    """What the link confirms, without confirming it (the page before the button)."""
    alias = _by_token(session, token, now)
    owner = session.get(User, alias.mailbox.user_id)
    return PendingConfirmation(
        address=alias.address,
        mailbox_address=alias.mailbox.address,
        owner=owner.email if owner is not None else "",
    )


def confirm_alias(*, session: Session, token: str, now: datetime | None = None) -> str:
    """Approve the alias the token was mailed to (once); the alias's address; committed.

    Checked again: an address that became another user's since is refused.
    """
    alias = _by_token(session, token, now)
    owner = session.get(User, alias.mailbox.user_id)
    assert owner is not None
    check_aliases(session, user=owner, aliases=[alias.address])
    alias.approved = True
    alias.confirm_token_hash = None
    address = alias.address
    session.commit()
    return address


def approve_alias(
    *, session: Session, mailbox_id: int, address: str, viewer: Viewer | None = None
) -> None:
    """Approve a pending alias (an admin of the company, or the CLI); committed.

    Only then does it count as the owner's address for access control. Checked again: an
    address that became another user's since cannot be approved.
    """
    if viewer is not None:
        require_admin(viewer)
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    alias = _alias_of(mailbox, address)
    owner = session.get(User, mailbox.user_id)
    assert owner is not None
    check_aliases(session, user=owner, aliases=[alias.address])
    alias.approved = True
    alias.confirm_token_hash = None  # a link mailed earlier stops working
    session.commit()


def reject_alias(
    *, session: Session, mailbox_id: int, address: str, viewer: Viewer | None = None
) -> None:
    """Reject an alias (an admin of the company, or the CLI): it is removed; committed.

    Its confirmation link, if one was mailed, stops working with it.
    """
    if viewer is not None:
        require_admin(viewer)
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    alias = _alias_of(mailbox, address)
    mailbox.aliases.remove(alias)
    session.commit()
