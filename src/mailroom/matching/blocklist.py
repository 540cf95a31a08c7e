"""The blocklist: addresses and `@domain` entries whose mail is not logged.

Entries belong to the company or to one user (then they apply to mail synced from that
user's mailboxes). `@domain` covers the domain and every subdomain. The company's own
domains are on the blocklist from the start: they are listed as built-in entries (taken
from the company's domains, so they can never drift apart) and internal addresses never
link. A mailbox's own address and aliases are never blocked, whatever the entries say.

Service functions take the session and keyword-only arguments; the CLI and the web call
the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import BlockEntry
from mailroom.db.models import Company, CompanyDomain, User
from mailroom.errors import BadInput, Conflict, NotFound
from mailroom.mail.addresses import normalise
from mailroom.mail.domains import normalise_domain


@dataclass(frozen=True, slots=True)
class Blocklist:
    """The entries in force for one mailbox: exact addresses and domains."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    def match(self, address: str) -> str | None:
        """The entry that blocks `address` (`jo@x.com` or `@x.com`), or None."""
        if address in self.addresses:
            return address
        domain = address.rpartition("@")[2]
        while domain:
            if domain in self.domains:
                return f"@{domain}"
            _, _, domain = domain.partition(".")
        return None


@dataclass(frozen=True, slots=True)
class EntryView:
    """One entry as `blocklist list` shows it."""

    entry: str
    user: str | None
    builtin: bool

    def to_json(self) -> dict[str, object]:
        """The entry as `blocklist list --json` and the API print it."""
        return {"entry": self.entry, "user": self.user, "builtin": self.builtin}


def clean_entry(raw: str) -> str:
    """`Jo@X.com` → `jo@x.com`; `@Sub.X.com` → `@sub.x.com`; anything else is BadInput."""
    value = raw.strip()
    if value.startswith("@"):
        domain = normalise_domain(value)
        if domain is None:
            raise BadInput(f"{raw!r} is not a domain.", hint="Write a domain as @example.com.")
        return f"@{domain}"
    address = normalise(value)
    if address is None:
        raise BadInput(
            f"{raw!r} is neither an address nor an @domain.",
            hint="Use an address (jo@example.com) or a domain (@example.com).",
        )
    return address


def _company_domains(session: Session, company_id: int) -> list[str]:
    return list(
        session.scalars(
            select(CompanyDomain.domain)
            .where(CompanyDomain.company_id == company_id)
            .order_by(CompanyDomain.domain)
        )
    )


def _user_in(session: Session, company: Company, email: str) -> User:
    address = normalise(email)
    user = session.scalar(select(User).where(User.company_id == company.id, User.email == address))
    if user is None:
        raise NotFound(
            f"No user {email!r} in {company.name}.", hint="List them with `mailroom user list`."
        )
    return user


def add_entry(
    session: Session, *, company: Company, entry: str, user_email: str | None = None
) -> BlockEntry:
    """Block an address or `@domain` for the company, or for one user's mailboxes only;
    Conflict for the company's own domain (blocked from the start)."""
    value = clean_entry(entry)
    if value.startswith("@") and value[1:] in _company_domains(session, company.id):
        raise Conflict(f"{value} is the company's own domain: it is blocked from the start.")
    user = _user_in(session, company, user_email) if user_email else None
    user_id = user.id if user else None
    duplicate = session.scalar(
        select(BlockEntry).where(
            BlockEntry.company_id == company.id,
            BlockEntry.entry == value,
            BlockEntry.user_id.is_(None) if user_id is None else BlockEntry.user_id == user_id,
        )
    )
    if duplicate is not None:
        raise Conflict(f"{value} is already on the blocklist.")
    row = BlockEntry(company_id=company.id, user_id=user_id, entry=value)
    session.add(row)
    session.flush()
    return row


def list_entries(session: Session, *, company: Company) -> list[EntryView]:
    """The company's domains (built in), then every entry with the user it is for."""
    views = [EntryView(f"@{d}", None, True) for d in _company_domains(session, company.id)]
    rows = session.execute(
        select(BlockEntry.entry, User.email)
        .outerjoin(User, User.id == BlockEntry.user_id)
        .where(BlockEntry.company_id == company.id)
        .order_by(BlockEntry.entry, BlockEntry.id)
    )
    views += [EntryView(entry, email, False) for entry, email in rows]
    return views


def remove_entry(
    session: Session, *, company: Company, entry: str, user_email: str | None = None
) -> int:
    """Remove an entry; the number removed. The company's own domains cannot be removed."""
    value = clean_entry(entry)
    if value.startswith("@") and value[1:] in _company_domains(session, company.id):
        raise BadInput(
            f"{value} is the company's own domain and stays blocked.",
            hint="Mail among colleagues is never logged; remove the domain from the company "
            "if it is not yours.",
        )
    query = select(BlockEntry).where(BlockEntry.company_id == company.id, BlockEntry.entry == value)
    if user_email:
        query = query.where(BlockEntry.user_id == _user_in(session, company, user_email).id)
    rows = list(session.scalars(query))
    if not rows:
        raise NotFound(
            f"{value} is not on the blocklist.",
            hint="See the entries with `mailroom blocklist list`.",
        )
    scopes = {r.user_id for r in rows}
    if len(scopes) > 1 and not user_email:
        company_wide = [r for r in rows if r.user_id is None]
        rows = company_wide or rows
        if not company_wide:
            raise BadInput(
                f"{value} is on several users' blocklists.", hint="Name one with --user EMAIL."
            )
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def load_blocklist(session: Session, *, company_id: int, user_id: int | None) -> Blocklist:
    """The entries in force for mail of one user's mailbox (company-wide + that user's)."""
    query = select(BlockEntry.entry).where(BlockEntry.company_id == company_id)
    if user_id is None:
        query = query.where(BlockEntry.user_id.is_(None))
    else:
        query = query.where((BlockEntry.user_id.is_(None)) | (BlockEntry.user_id == user_id))
    entries = list(session.scalars(query))
    return Blocklist(
        addresses=frozenset(e for e in entries if not e.startswith("@")),
        domains=frozenset(e[1:] for e in entries if e.startswith("@")),
    )
