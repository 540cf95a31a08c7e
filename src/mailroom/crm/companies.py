"""Companies (tenants) and their users: the service functions every interface calls.

A company adds users only in its own domains (issue 11): an address in another domain is
refused unless the operator confirms it (`confirm_domain`, `mailroom user add
--confirm-domain`). Confirming leaves the company's domains as they are: a shared domain
(gmail.com) or a client's must not become internal to the matching. The dashboard never
confirms: a company admin cannot add users in another company's domain. A refusal never
tells whether the address or the domain belongs to another company: an address taken in
another company gets words that name no company and do not say it exists (`not_addable`);
only the company's own users are named as existing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Company, CompanyDomain, User
from mailroom.errors import BadInput, Conflict, NotFound
from mailroom.mail.addresses import domain_of, normalise
from mailroom.mail.domains import normalise_domain
from mailroom.security.passwords import hash_password

ROLES = ("admin", "member")


def add_company(session: Session, *, name: str, domains: list[str]) -> Company:
    """Create a company with its domains; BadInput or Conflict if the name is empty or taken."""
    name = name.strip()
    if not name:
        raise BadInput("A company needs a name.")
    if session.scalar(select(Company).where(Company.name == name)):
        raise Conflict(f"A company named {name!r} already exists.")
    clean = []
    for raw in domains:
        domain = normalise_domain(raw)
        if domain is None:
            raise BadInput(f"{raw!r} is not a domain name.", hint="Use a form like example.com.")
        if domain not in clean:
            clean.append(domain)
    company = Company(name=name, domains=[CompanyDomain(domain=d) for d in clean])
    session.add(company)
    session.flush()
    return company


def get_company(session: Session, name: str) -> Company:
    """The company named `name`, or NotFound."""
    company = session.scalar(select(Company).where(Company.name == name))
    if company is None:
        raise NotFound(
            f"No company named {name!r}.", hint="List them with `mailroom company list`."
        )
    return company


def list_companies(session: Session) -> list[Company]:
    """Every company, by name."""
    return list(session.scalars(select(Company).order_by(Company.name)))


def add_user(
    session: Session,
    *,
    company: Company,
    email: str,
    name: str = "",
    admin: bool = False,
    password: str | None = None,
    confirm_domain: bool = False,
) -> User:
    """Add a user to `company`, with an Argon2 hash of `password` when one is given.

    The address must be in one of the company's domains, unless `confirm_domain` (the
    operator's) accepts it outside them (see the module doc).
    """
    address = normalise(email)
    if address is None:
        raise BadInput(f"{email!r} is not an email address.")
    if password is not None and len(password) < 8:
        raise BadInput("A password needs at least 8 characters.")
    domain = domain_of(address)
    own = {d.domain for d in company.domains}
    if domain not in own and not confirm_domain:
        domains = ", ".join(sorted(own)) or "none yet"
        raise BadInput(
            f"{address} is not in {company.name}'s domains ({domains}).",
            hint="Add users in the company's own domains; for an address outside them, the "
            "operator runs `mailroom user add EMAIL --company NAME --confirm-domain`.",
        )
    taken = session.scalar(select(User).where(User.email == address))
    if taken is not None:
        if taken.company_id == company.id:
            raise Conflict(f"A user with the address {address} already exists in {company.name}.")
        raise not_addable(address)
    user = User(
        company_id=company.id,
        email=address,
        name=name.strip(),
        role="admin" if admin else "member",
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def not_addable(address: str) -> BadInput:
    """The refusal of an address taken outside the company: it names no other company."""
    return BadInput(
        f"{address} cannot be added as a user.",
        hint="Check the address; if it should be a user here, ask the operator who runs Mailroom.",
    )


def get_user(session: Session, email: str) -> User:
    """The user with the address `email`, or NotFound."""
    address = normalise(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if user is None:
        raise NotFound(f"No user with the address {email!r}.")
    return user
