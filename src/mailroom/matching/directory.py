"""Who is internal to a company: its domains (and their subdomains), users, mailboxes, aliases.

Internal addresses never create links or records (docs/architecture.md, matching), and a
message whose every participant is internal is `internal` rather than inbound or outbound.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import CompanyDomain, Mailbox, MailboxAlias, User


@dataclass(frozen=True, slots=True)
class CompanyDirectory:
    """The company's internal domains and addresses, loaded once per sync batch."""

    company_id: int
    domains: frozenset[str]
    addresses: frozenset[str]

    def is_internal(self, address: str) -> bool:
        """Whether a normalised address (mail.addresses.normalise) is the company's own."""
        if address in self.addresses:
            return True
        domain = address.rpartition("@")[2]
        while domain:
            if domain in self.domains:
                return True
            _, _, domain = domain.partition(".")
        return False


def load_directory(session: Session, company_id: int) -> CompanyDirectory:
    """Who is internal to the company: its domains, users, mailboxes and approved aliases.

    A pending alias is not internal: a member could claim any address, and mail to or
    from it would turn `internal` (never logged) or `outbound` on their word alone.
    """
    domains = session.scalars(
        select(CompanyDomain.domain).where(CompanyDomain.company_id == company_id)
    )
    users = session.scalars(select(User.email).where(User.company_id == company_id))
    boxes = session.scalars(select(Mailbox.address).where(Mailbox.company_id == company_id))
    aliases = session.scalars(
        select(MailboxAlias.address)
        .join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id)
        .where(
            Mailbox.company_id == company_id,
            MailboxAlias.approved.is_(True),  # a pending alias is only a claim (issue 11)
        )
    )
    return CompanyDirectory(
        company_id=company_id,
        domains=frozenset(domains),
        addresses=frozenset([*users, *boxes, *aliases]),
    )
