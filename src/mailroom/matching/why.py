"""`mailroom why`: for one message, every link with its reason, or what skipped it.

The answer comes from what ingestion stored, never from re-running anything: the links
with their reasons (`address:FIELD`, `domain`, `thread`, `case-ref`, `rule:NAME`,
`manual`), the `MessageSkip` (`filter:NAME` or `rule:NAME` and what it saw), the rules'
outcomes and the links removed by hand. A message that is neither linked nor skipped is
explained too: none of its external participants is on a record.

`to_json` is the exact object the issue fixes for acceptance checks:
`{"message_id": …, "links": [{"record": "TYPE:ID", "reason": …}], "skipped_by": …}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import FeedSkip, LinkTombstone, MessageSkip, RuleOutcome
from mailroom.db.models import Company, Mailbox, Message, MessageAddress, MessageLink, Record
from mailroom.errors import BadInput, NotFound
from mailroom.mail.threads import normalise_message_id
from mailroom.matching.linker import identity_for


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one message is where it is."""

    message_id: str
    company: str
    subject: str
    direction: str
    links: list[tuple[str, str]] = field(default_factory=list)
    skipped_by: str | None = None
    detail: str = ""
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    # (record ref, why): links the mailbox's `feeds` setting refused (issue 13 item 11)
    not_fed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The fixed object; `not_linked` is added only when a feeds setting refused a link."""
        answer: dict[str, Any] = {
            "message_id": self.message_id,
            "links": [{"record": ref, "reason": reason} for ref, reason in self.links],
            "skipped_by": self.skipped_by,
        }
        if self.not_fed:
            answer["not_linked"] = [
                {"record": ref, "reason": "feeds", "detail": detail} for ref, detail in self.not_fed
            ]
        return answer

    def lines(self) -> list[str]:
        """The human answer, one fact a line."""
        head = f"<{self.message_id}> ({self.company}, {self.direction})"
        out = [head + (f": {self.subject}" if self.subject else "")]
        if self.skipped_by:
            out.append(f"  not logged: skipped by {self.skipped_by} — {self.detail}")
        for ref, reason in self.links:
            out.append(f"  linked to {ref}: {reason}")
        for rule, outcome in self.outcomes:
            out.append(f"  rule:{rule}: {outcome}")
        for ref, detail in self.not_fed:
            out.append(f"  not linked to {ref}: {detail}")
        for ref in self.removed:
            out.append(f"  {ref}: link removed by hand (automation never re-adds it)")
        if not self.skipped_by and not self.links and not self.not_fed:
            people = ", ".join(self.participants) or "none"
            out.append(f"  not linked: no record holds an external participant ({people})")
        return out


def find_message(session: Session, message_id: str, company: Company | None) -> Message:
    """The stored message with this Message-ID (angle brackets optional), of `company`.

    Looked up by its identity (matching.linker.identity_for), so a very long id is found
    too; without a company, an id stored for several companies is refused as ambiguous.
    The one Message-ID lookup of Mailroom (services.messages uses it for the API).
    """
    value = normalise_message_id(message_id.strip()) or message_id.strip().strip("<>")
    if not value:
        raise BadInput("Give a Message-ID, e.g. 1234@mail.example (angle brackets optional).")
    identity = identity_for(value)
    query = select(Message).where(Message.identity == identity)
    if company is not None:
        query = query.where(Message.company_id == company.id)
    found = list(session.scalars(query.order_by(Message.company_id).limit(2)))
    if not found:
        where = f" in {company.name}" if company else ""
        raise NotFound(
            f"No stored message has the Message-ID <{value}>{where}.",
            hint="Check the id (without angle brackets) and that its mailbox has synced.",
        )
    if len(found) > 1:
        raise BadInput(
            f"<{value}> is stored for several companies.", hint="Name one with --company NAME."
        )
    return found[0]


def explain(session: Session, *, message_id: str, company: Company | None = None) -> Explanation:
    message = find_message(session, message_id, company)
    owner = session.get(Company, message.company_id)
    links = [
        (f"{rtype}:{rid}", reason)
        for rtype, rid, reason in session.execute(
            select(Record.type, Record.id, MessageLink.reason)
            .join(Record, Record.id == MessageLink.record_id)
            .where(MessageLink.message_id == message.id)
            .order_by(MessageLink.id)
        )
    ]
    skip = session.scalar(select(MessageSkip).where(MessageSkip.message_id == message.id))
    outcomes = [
        (rule, outcome)
        for rule, outcome in session.execute(
            select(RuleOutcome.rule, RuleOutcome.outcome)
            .where(RuleOutcome.message_id == message.id)
            .order_by(RuleOutcome.id)
        )
    ]
    removed = [
        f"{rtype}:{rid}"
        for rtype, rid in session.execute(
            select(Record.type, Record.id)
            .join(LinkTombstone, LinkTombstone.record_id == Record.id)
            .where(LinkTombstone.message_id == message.id)
        )
    ]
    people = list(
        dict.fromkeys(
            session.scalars(
                select(MessageAddress.address)
                .where(MessageAddress.message_id == message.id)
                .order_by(MessageAddress.id)
            )
        )
    )
    return Explanation(
        not_fed=_not_fed(session, message.id),
        message_id=message.message_id,
        company=owner.name if owner else "?",
        subject=message.subject,
        direction=message.direction,
        links=links,
        skipped_by=skip.skipped_by if skip else None,
        detail=skip.detail if skip else "",
        outcomes=outcomes,
        removed=removed,
        participants=people,
    )


def _not_fed(session: Session, message_id: int) -> list[tuple[str, str]]:
    """The links a mailbox's feeds setting refused, each with the setting and its fix."""
    rows = session.execute(
        select(Record.type, Record.id, FeedSkip.mailbox_id, FeedSkip.feeds, Mailbox.address)
        .join(Record, Record.id == FeedSkip.record_id)
        .outerjoin(Mailbox, Mailbox.id == FeedSkip.mailbox_id)
        .where(FeedSkip.message_id == message_id)
        .order_by(FeedSkip.id)
    )
    found = []
    for rtype, rid, mailbox_id, feeds, address in rows:
        where = f"mailbox {mailbox_id} ({address})" if mailbox_id else "its mailbox"
        fix = f"mailroom mailbox edit {mailbox_id} --feeds all" if mailbox_id else "--feeds all"
        found.append(
            (
                f"{rtype}:{rid}",
                f"{where} feeds only {', '.join(feeds)} (its feeds setting); "
                f"to link {rtype}s too: `{fix}`",
            )
        )
    return found
