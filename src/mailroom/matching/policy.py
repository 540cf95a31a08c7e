"""Matching settings and the `Policy` one batch is ingested under.

A company's switches (`MatchingSettings`: opportunity policy, log bulk mail, confidential
subject words, records created per sender per day) and a mailbox's participation policy
(`MailboxPolicy`) are rows that may be missing: a missing row means the defaults, so a
new company works without any setup. `load_policy` reads everything one mailbox's batch
needs — settings, the blocklist in force for the mailbox's user, the rules in order, the
mailbox's own addresses — in a handful of queries, once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import (
    DEFAULT_CONFIDENTIAL,
    DEFAULT_MAX_CREATED_PER_SENDER,
    OPPORTUNITY_POLICIES,
    PARTICIPATION_POLICIES,
    MailboxPolicy,
    MatchingSettings,
)
from mailroom.db.models import RECORD_TYPES, Company, Mailbox
from mailroom.errors import BadInput, NotFound
from mailroom.matching.blocklist import Blocklist, load_blocklist
from mailroom.matching.rules import Rule, load_rules


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the filters, the matcher and the rules need for one mailbox's mail."""

    company_id: int
    mailbox_id: int | None = None
    user_id: int | None = None
    mailbox_address: str | None = None
    own_addresses: frozenset[str] = frozenset()
    opportunity_policy: str = "all"
    log_bulk: bool = False
    confidential: tuple[str, ...] = tuple(DEFAULT_CONFIDENTIAL)
    max_created_per_sender: int = DEFAULT_MAX_CREATED_PER_SENDER
    participation: str = "known-records"
    feeds: frozenset[str] | None = None  # record types the mailbox's mail may link to
    blocklist: Blocklist = field(default_factory=Blocklist)
    rules: tuple[Rule, ...] = ()


def company_settings(session: Session, company_id: int) -> MatchingSettings:
    """The company's settings row (created with the defaults on first use)."""
    row = session.scalar(select(MatchingSettings).where(MatchingSettings.company_id == company_id))
    if row is None:
        row = MatchingSettings(
            company_id=company_id,
            opportunity_policy="all",
            log_bulk=False,
            confidential_subjects=list(DEFAULT_CONFIDENTIAL),
            max_created_per_sender=DEFAULT_MAX_CREATED_PER_SENDER,
        )
        session.add(row)
        session.flush()
    return row


def opportunity_policy_of(session: Session, company_id: int) -> str:
    """The company's opportunity policy, read without creating a settings row."""
    value = session.scalar(
        select(MatchingSettings.opportunity_policy).where(MatchingSettings.company_id == company_id)
    )
    return value or "all"


def update_settings(
    session: Session,
    *,
    company: Company,
    opportunity_policy: str | None = None,
    log_bulk: bool | None = None,
    confidential: Sequence[str] | None = None,
    max_created_per_sender: int | None = None,
) -> MatchingSettings:
    """Change the company's matching settings (only those given); BadInput for a bad value."""
    row = company_settings(session, company.id)
    if opportunity_policy is not None:
        if opportunity_policy not in OPPORTUNITY_POLICIES:
            raise BadInput(
                f"Unknown opportunity policy {opportunity_policy!r}.",
                hint=f"Use one of: {', '.join(OPPORTUNITY_POLICIES)}.",
            )
        row.opportunity_policy = opportunity_policy
    if log_bulk is not None:
        row.log_bulk = log_bulk
    if confidential is not None:
        words = [w.strip() for w in confidential if w.strip()]
        row.confidential_subjects = list(dict.fromkeys(words))
    if max_created_per_sender is not None:
        if max_created_per_sender < 0:
            raise BadInput("The number of records per sender and day cannot be negative.")
        row.max_created_per_sender = max_created_per_sender
    session.flush()
    return row


def settings_json(row: MatchingSettings) -> dict[str, object]:
    """The company's matching settings as JSON."""
    return {
        "opportunity_policy": row.opportunity_policy,
        "log_bulk": row.log_bulk,
        "confidential_subjects": list(row.confidential_subjects),
        "max_created_per_sender": row.max_created_per_sender,
    }


def set_participation(session: Session, *, mailbox: Mailbox, policy: str) -> MailboxPolicy:
    """Set the mailbox's participation policy; BadInput for an unknown one."""
    if policy not in PARTICIPATION_POLICIES:
        raise BadInput(
            f"Unknown participation policy {policy!r}.",
            hint=f"Use one of: {', '.join(PARTICIPATION_POLICIES)}.",
        )
    row = session.scalar(select(MailboxPolicy).where(MailboxPolicy.mailbox_id == mailbox.id))
    if row is None:
        row = MailboxPolicy(mailbox_id=mailbox.id, participation=policy)
        session.add(row)
    row.participation = policy
    session.flush()
    return row


def parse_feeds(value: str | Sequence[str]) -> list[str] | None:
    """`lead,contact` (or a list) as the feeds setting; `all` or every type → None.

    BadInput names an unknown type and lists the known ones; nothing at all is refused
    (a mailbox that links to nothing is not a feed choice)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = [item.strip().lower() for item in items if item.strip()]
    hint = f"Use `all` or a comma-separated list of: {', '.join(RECORD_TYPES)}."
    if not wanted:
        raise BadInput("Name at least one record type the mailbox feeds.", hint=hint)
    if wanted == ["all"]:
        return None
    unknown = [item for item in wanted if item not in RECORD_TYPES]
    if unknown:
        raise BadInput(f"Unknown record type {unknown[0]!r} in feeds.", hint=hint)
    chosen = [t for t in RECORD_TYPES if t in wanted]
    return None if len(chosen) == len(RECORD_TYPES) else chosen


def feeds_of(session: Session, *, mailbox_id: int) -> list[str] | None:
    """The record types the mailbox's mail may link to (None: all)."""
    value = session.scalar(
        select(MailboxPolicy.feeds).where(MailboxPolicy.mailbox_id == mailbox_id)
    )
    return list(value) if value is not None else None


def set_feeds(session: Session, *, mailbox: Mailbox, feeds: list[str] | None) -> None:
    """Set which record types the mailbox's mail may link to (None: all); from now on.

    Links already made stay; mail stored later (and mail re-matched) follows the setting."""
    row = session.scalar(select(MailboxPolicy).where(MailboxPolicy.mailbox_id == mailbox.id))
    if row is None:
        row = MailboxPolicy(mailbox_id=mailbox.id, participation="known-records")
        session.add(row)
    row.feeds = list(feeds) if feeds is not None else None
    session.flush()


def load_policy(session: Session, *, company_id: int, mailbox_id: int | None) -> Policy:
    """The policy for mail of `mailbox_id` (None: mail that came by no mailbox)."""
    settings = session.scalar(
        select(MatchingSettings).where(MatchingSettings.company_id == company_id)
    )
    mailbox = session.get(Mailbox, mailbox_id) if mailbox_id is not None else None
    if mailbox_id is not None and (mailbox is None or mailbox.company_id != company_id):
        raise NotFound(f"No mailbox {mailbox_id} in this company.")
    participation = "known-records"
    feeds: frozenset[str] | None = None
    own: frozenset[str] = frozenset()
    if mailbox is not None:
        row = session.execute(
            select(MailboxPolicy.participation, MailboxPolicy.feeds).where(
                MailboxPolicy.mailbox_id == mailbox.id
            )
        ).first()
        if row is not None:
            participation = row[0] or "known-records"
            feeds = frozenset(row[1]) if row[1] is not None else None
        approved = (a.address for a in mailbox.aliases if a.approved)  # pending: a claim only
        own = frozenset([mailbox.address, *approved])
    user_id = mailbox.user_id if mailbox is not None else None
    base = Policy(
        company_id=company_id,
        mailbox_id=mailbox_id,
        user_id=user_id,
        mailbox_address=mailbox.address if mailbox is not None else None,
        own_addresses=own,
        participation=participation,
        feeds=feeds,
        blocklist=load_blocklist(session, company_id=company_id, user_id=user_id),
        rules=load_rules(session, company_id=company_id),
    )
    if settings is None:
        return base
    return replace(
        base,
        opportunity_policy=settings.opportunity_policy,
        log_bulk=settings.log_bulk,
        confidential=tuple(settings.confidential_subjects),
        max_created_per_sender=settings.max_created_per_sender,
    )
