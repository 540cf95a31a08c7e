"""Companies (tenants) and their users: the service functions every interface calls."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Company, CompanyDomain, User
from mailroom.errors import BadInput, Conflict, NotFound
from mailroom.mail.addresses import normalise
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
) -> User:
    """Add a user to `company`, with an Argon2 hash of `password` when one is given."""
    address = normalise(email)
    if address is None:
        raise BadInput(f"{email!r} is not an email address.")
    if session.scalar(select(User).where(User.email == address)):
        raise Conflict(f"A user with the address {address} already exists.")
    if password is not None and len(password) < 8:
        raise BadInput("A password needs at least 8 characters.")
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


def get_user(session: Session, email: str) -> User:
    """The user with the address `email`, or NotFound."""
    address = normalise(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if user is None:
        raise NotFound(f"No user with the address {email!r}.")
    return user
