"""Filters: what is not logged, as a chain of tiny named objects, then the user's rules.

`decide` runs `FILTERS` in the declared order; the first that objects skips the message
as `filter:NAME`, with a detail saying what it saw. The names are stable, because
`mailroom why` prints them and acceptance checks compare them:

| name            | skips                                                          |
|-----------------|----------------------------------------------------------------|
| `internal`      | mail whose every participant is internal                       |
| `blocklist`     | mail with a blocked address or @domain (never the mailbox's own)|
| `confidential`  | mail whose subject holds a confidential word ("Confidential")   |
| `bulk`          | list, bulk and automatic mail, unless the company logs it       |
| `participation` | with the mailbox policy `participated`: mail of threads its      |
|                 | owner took no part in                                           |

Then the rules run in their order: the first matching `ignore` rule skips the message as
`rule:NAME`; the other matching rules' actions are returned, to apply once it is stored.
A skipped message is still stored (its identity and why it was skipped, for `why` and
for deduplication — invariant "nothing dropped silently", docs/architecture.md), but
never linked, shown on a timeline or used by
rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Message
from mailroom.matching.linker import identity_for
from mailroom.matching.policy import Policy
from mailroom.matching.rules import Rule
from mailroom.matching.view import MailView

DIRECT_ROLES = ("from", "to", "cc", "sender")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the chain decided: skipped (by what, and why), or the actions to apply."""

    skipped_by: str | None = None
    detail: str = ""
    actions: tuple[Rule, ...] = ()


class Filter(Protocol):
    """A named test that can keep a message from being logged."""

    name: str
    description: str

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """What made the message unfit to log, or None."""
        ...


class InternalOnly:
    """Skips mail among internal people only: such mail is never logged."""

    name = "internal"
    description = "Every participant is internal: mail among colleagues is never logged."

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """Why this filter skips the message, or None if it lets it through."""
        return "every participant is internal" if mail.direction == "internal" else None


class Blocklisted:
    """Skips mail with a blocked participant; the mailbox's own addresses are exempt."""

    name = "blocklist"
    description = "A participant is on the company's or the mailbox owner's blocklist."

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """Why this filter skips the message, or None if it lets it through."""
        for _, addr in mail.parsed.participants():
            if addr.address in policy.own_addresses:
                continue  # a mailbox's own address and aliases are never blocked
            entry = policy.blocklist.match(addr.address)
            if entry is not None:
                return f"{addr.address} is blocked by {entry}"
        return None


class Confidential:
    """Skips mail whose subject holds one of the company's confidential words."""

    name = "confidential"
    description = "The subject is marked confidential."

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """Why this filter skips the message, or None if it lets it through."""
        subject = mail.parsed.subject.casefold()
        for word in policy.confidential:
            if word and word.casefold() in subject:
                return f"the subject contains {word!r}"
        return None


class BulkOrAutomatic:
    """Skips list, bulk and automatic mail unless the company logs it."""

    name = "bulk"
    description = "List, bulk or automatic mail (newsletters, auto-replies, bounces)."

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """Why this filter skips the message, or None if it lets it through."""
        return None if policy.log_bulk else mail.automated


class NotParticipating:
    """With `participated`, skips threads the mailbox's owner took no part in."""

    name = "participation"
    description = "The mailbox logs only threads its owner took part in."

    def check(self, mail: MailView, policy: Policy, session: Session) -> str | None:
        """Why this filter skips the message, or None if it lets it through."""
        own = policy.own_addresses
        if policy.participation != "participated" or not own:
            return None
        if any(a in own for role in DIRECT_ROLES for a in mail.addresses(role)):
            return None
        refs = [identity_for(r) for r in mail.parsed.references]
        if mail.parsed.in_reply_to:
            refs.append(identity_for(mail.parsed.in_reply_to))
        if refs:
            took_part = session.scalar(
                select(Message.id)
                .where(
                    Message.company_id == policy.company_id,
                    Message.identity.in_(refs[-200:]),
                    Message.from_address.in_(sorted(own)),
                )
                .limit(1)
            )
            if took_part is not None:
                return None
        return "the mailbox's owner is not a participant of this message or its thread"


FILTERS: tuple[Filter, ...] = (
    InternalOnly(),
    Blocklisted(),
    Confidential(),
    BulkOrAutomatic(),
    NotParticipating(),
)


def decide(session: Session, mail: MailView, policy: Policy) -> Decision:
    """Run the filter chain, then the rules, for one message."""
    for item in FILTERS:
        detail = item.check(mail, policy, session)
        if detail is not None:
            return Decision(skipped_by=f"filter:{item.name}", detail=detail)
    actions: list[Rule] = []
    for rule in policy.rules:
        if not rule.check(mail):
            continue
        if rule.action == "ignore":
            return Decision(skipped_by=f"rule:{rule.name}", detail=rule.description or "ignore")
        actions.append(rule)
    return Decision(actions=tuple(actions))
