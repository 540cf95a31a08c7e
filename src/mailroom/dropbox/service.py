"""What happens to mail that reaches a company's drop address.

Only the company's own people may log mail this way: the sender (the From header, else
the envelope sender) must be one of its users, mailboxes or aliases. Anyone else is
refused (550) or, when the company chose `quarantine`, kept aside unlogged
(`DropQuarantine`), as the company's drop token says. The token is what keeps strangers
out — sender addresses are not authenticated by SMTP — so it should be kept private.

Accepted mail is logged like synced mail (ingest.logbook → ingest.batch): a forward is
first unwrapped to the original (dropbox.unwrap), then direction comes from the company
directory (the user's own BCC copy is outbound, a customer's forwarded mail inbound) and
links from the records holding its external participants. The user's first mailbox, if
any, gives the matching policy (else the company's no-mailbox policy); no copy row is kept
(the mail is in no mailbox), so a company with no mailbox at all can log mail this way too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailroom.connectors.smtp_receiver import Refusal
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MailboxAlias, User
from mailroom.db.outbox_models import DropQuarantine, DropToken
from mailroom.dropbox.tokens import find_token
from mailroom.dropbox.unwrap import unwrap
from mailroom.ingest.logbook import store_message
from mailroom.mail.addresses import normalise, parse_address_list
from mailroom.mail.blobs import BlobStore
from mailroom.mail.headers import split_header_block, to_text, unfold

log = logging.getLogger(__name__)

UNKNOWN_ADDRESS = Refusal("5.1.1", "No such drop address here")
USERS_ONLY = Refusal("5.7.1", "This drop address takes mail from the company's users only")


@dataclass(frozen=True, slots=True)
class DropOutcome:
    """`logged` (with the message row), `quarantined` or `refused`, and why."""

    status: str
    reason: str
    message_id: int | None = None


def company_sender(session: Session, *, company_id: int, address: str) -> User | None:
    """The company user `address` belongs to (their login, a mailbox or an approved alias)."""
    user = session.scalar(select(User).where(User.company_id == company_id, User.email == address))
    if user is not None:
        return user
    owner = session.scalar(
        select(Mailbox.user_id).where(Mailbox.company_id == company_id, Mailbox.address == address)
    ) or session.scalar(
        select(Mailbox.user_id)
        .join(MailboxAlias, MailboxAlias.mailbox_id == Mailbox.id)
        .where(
            Mailbox.company_id == company_id,
            MailboxAlias.address == address,
            MailboxAlias.approved.is_(True),  # a pending alias is only a claim
        )
    )
    return session.get(User, owner) if owner is not None else None


def header_from(data: bytes) -> str | None:
    """The first From address of a raw message, or None."""
    pairs, _ = split_header_block(data, {"from"})
    for _, value in pairs:
        people = parse_address_list(to_text(unfold(value)))
        return people[0].address if people else None
    return None


def sender_allowed(session: Session, *, token: DropToken, envelope_from: str) -> bool:
    """Whether the envelope sender may log mail here (checked at RCPT time)."""
    address = normalise(envelope_from)
    return (
        address is not None
        and company_sender(session, company_id=token.company_id, address=address) is not None
    )


def receive(
    session: Session,
    *,
    token: DropToken,
    envelope_from: str,
    data: bytes,
    blobs: BlobStore,
) -> DropOutcome:
    """Log, quarantine or refuse one message delivered to `token`'s address."""
    candidates = [a for a in (header_from(data), normalise(envelope_from)) if a]
    user = None
    for address in candidates:
        user = company_sender(session, company_id=token.company_id, address=address)
        if user is not None:
            break
    if user is None:
        who = candidates[0] if candidates else "an unknown sender"
        reason = f"{who} is not a user of this company"
        if token.unknown_senders == "quarantine":
            session.add(
                DropQuarantine(
                    company_id=token.company_id,
                    envelope_from=(normalise(envelope_from) or "")[:320],
                    header_from=header_from(data),
                    size=len(data),
                    raw_sha256=blobs.put(data),
                    reason=reason,
                )
            )
            session.flush()
            return DropOutcome("quarantined", reason)
        return DropOutcome("refused", reason)
    original = unwrap(data) or data
    mailbox_id = session.scalar(
        select(Mailbox.id).where(Mailbox.user_id == user.id).order_by(Mailbox.id)
    )
    stored = store_message(
        session,
        company_id=token.company_id,
        mailbox_id=mailbox_id,
        blobs=blobs,
        data=original,
    )
    kind = "forwarded original" if original is not data else "message"
    return DropOutcome("logged", f"{kind} logged for {user.email}", message_id=stored[0])


def check_recipient(
    sessions: sessionmaker[Session], *, address: str, envelope_from: str
) -> Refusal | None:
    """RCPT time: None if `address` is a live drop address this sender may write to.

    A wrong or revoked token is refused at once, and so is a sender who is not one of the
    company's users when the company refuses strangers."""
    with sessions() as session:
        token = find_token(session, address)
        if token is None:
            return UNKNOWN_ADDRESS
        if token.unknown_senders == "refuse" and not sender_allowed(
            session, token=token, envelope_from=envelope_from
        ):
            return USERS_ONLY
    return None


def deliver(
    sessions: sessionmaker[Session],
    *,
    blobs: BlobStore,
    envelope_from: str,
    recipients: Sequence[str],
    data: bytes,
) -> Refusal | None:
    """DATA time: log, quarantine or refuse the message once per company it is addressed
    to, each in its own transaction; refused only if every company refused it."""
    outcomes: list[DropOutcome] = []
    seen: set[int] = set()
    for address in recipients:
        with transaction(sessions) as session:
            token = find_token(session, address)
            if token is None or token.company_id in seen:
                continue
            seen.add(token.company_id)
            outcome = receive(
                session, token=token, envelope_from=envelope_from, data=data, blobs=blobs
            )
        log.info("dropbox: company %s: %s (%s)", token.company_id, outcome.status, outcome.reason)
        outcomes.append(outcome)
    if outcomes and all(o.status == "refused" for o in outcomes):
        return Refusal("5.7.1", f"Not accepted: {outcomes[0].reason}")
    return None
