"""First run: a new install reaches its first sign-in without a terminal.

While no user exists, `mailroom serve` makes a `FirstRun` with a random one-time token,
prints the setup address (`http://127.0.0.1:8025/setup?token=…`) and keeps only the
token's SHA-256 in the serve process's memory. The /setup page calls `complete_setup`,
which creates the company with its domains and the first admin through the same service
functions as the CLI (crm.companies). The token works once: it is spent when setup
succeeds (a refused form — a bad address, a short password — leaves it usable), and setup
is closed for good as soon as any user exists, whatever token is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from mailroom.crm.companies import add_company, add_user
from mailroom.db.models import User
from mailroom.errors import NotFound

__all__ = ["FirstRun", "SetupForm", "complete_setup", "setup_open", "setup_url"]


def setup_open(session: Session) -> bool:
    """Whether this install still needs its first company and admin (no user exists)."""
    return not session.scalar(select(exists().where(User.id.is_not(None))))


def setup_url(host: str, port: int, token: str) -> str:
    """The address `serve` prints; a wildcard listen address is shown as 127.0.0.1."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/setup?token={token}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class FirstRun:
    """The one-time setup token of a serve process: only its hash is kept."""

    def __init__(self) -> None:
        self._hash: bytes | None = None
        self._lock = threading.Lock()

    def issue(self) -> str:
        """A new random token (replacing any earlier one); returned once, never stored."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._hash = _digest(token)
        return token

    def valid(self, token: str | None) -> bool:
        """Whether `token` is the unspent token (compared in constant time)."""
        current = self._hash
        return (
            bool(token)
            and current is not None
            and hmac.compare_digest(current, _digest(token or ""))
        )

    def spend(self, token: str) -> bool:
        """Spend the token if it is the unspent one; True when this call spent it."""
        with self._lock:
            if not self.valid(token):
                return False
            self._hash = None
            return True

    def restore(self, token: str) -> None:
        """Make a token spent by a setup that then failed usable again."""
        with self._lock:
            self._hash = _digest(token)


def check_setup(session: Session, first_run: FirstRun | None, token: str | None) -> None:
    """NotFound unless setup is open and `token` is the unspent one (the page is 404)."""
    if first_run is None or not first_run.valid(token) or not setup_open(session):
        raise NotFound("There is no setup page here.", hint="Sign in instead.")


@dataclass(frozen=True, slots=True)
class SetupForm:
    """What the setup page asks for."""

    company: str
    domains: list[str]
    email: str
    name: str
    password: str


def complete_setup(
    session: Session, *, first_run: FirstRun | None, token: str, form: SetupForm
) -> User:
    """Create the company, its domains and its first admin (with a password), spending the
    token; NotFound when setup is closed or the token is wrong or spent, BadInput or
    Conflict (the token kept) for a form to fix. The caller commits."""
    check_setup(session, first_run, token)
    assert first_run is not None
    if not first_run.spend(token):  # a concurrent setup spent it first
        raise NotFound("There is no setup page here.", hint="Sign in instead.")
    try:
        company = add_company(session, name=form.company, domains=form.domains)
        return add_user(
            session,
            company=company,
            email=form.email,
            name=form.name,
            admin=True,
            password=form.password,
        )
    except Exception:
        first_run.restore(token)
        raise
