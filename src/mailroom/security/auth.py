"""Who is calling: sign-in, browser sessions, CSRF tokens, rate limiting and API tokens.

Invariants:
- sign-in answers the same words, after the same argon2 work, for an unknown address and
  for a wrong password (a dummy hash is verified when there is no user), so it cannot be
  used to learn who has an account;
- after `MAX_FAILURES` failed attempts for one address, or `MAX_CLIENT_FAILURES` from one
  client address, within `WINDOW`, sign-in is refused until the window has passed — even
  with the right password;
- session cookies and API tokens are random 256-bit values; only their SHA-256 is stored,
  and neither is ever logged or shown again after it was created;
- every session has its own CSRF token; `check_csrf` compares in constant time;
- a password is changed only with the current one (wrong guesses count as failed
  sign-ins), which ends every other session of the user and, if asked, revokes all their
  API tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailroom.db.models import User
from mailroom.db.web_models import ApiToken, SignInAttempt, WebSession
from mailroom.errors import BadInput, NotFound, UserError
from mailroom.mail.addresses import normalise
from mailroom.security.passwords import hash_password, verify_password

SESSION_LIFETIME = timedelta(days=14)
WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 30
TOKEN_PREFIX = "mr_"


@cache
def _dummy_hash() -> str:
    """The hash verified when no user has the address: made on the first sign-in attempt,
    not at import (an argon2 hash cost every command importing this module ~0.1 s)."""
    return hash_password(secrets.token_urlsafe(16))


class SignInFailed(UserError):
    """Wrong address or password (deliberately not saying which)."""

    kind = "sign-in"


class TooManyAttempts(UserError):
    """Sign-in is paused for this address or client after repeated failures."""

    kind = "rate-limited"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def digest(token: str) -> str:
    """The stored form of a session cookie or API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(
    session: Session, *, email: str, password: str, client: str, now: datetime | None = None
) -> User | None:
    """The user with this address and password; None (failure recorded) if they do not match.

    Raises `TooManyAttempts` while the address or client is rate limited. The caller commits
    either way, so a failure is remembered, then answers with `sign_in_failed()`.
    """
    now = now or _now()
    address = normalise(email) or email.strip().lower()[:320]
    since = now - WINDOW
    by_email = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.email == address, SignInAttempt.at > since)
    )
    by_client = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.client == client[:64], SignInAttempt.at > since)
    )
    if (by_email or 0) >= MAX_FAILURES or (by_client or 0) >= MAX_CLIENT_FAILURES:
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            "Too many failed sign-ins.",
            hint=f"Wait {minutes} minutes and try again, or ask an admin to reset your password.",
        )
    dummy = _dummy_hash()  # before the lookup, so its first-time cost does not tell either
    user = session.scalar(select(User).where(User.email == address))
    stored = user.password_hash if user is not None and user.password_hash else dummy
    if verify_password(stored, password) and user is not None and user.password_hash:
        session.execute(delete(SignInAttempt).where(SignInAttempt.email == address))
        return user
    session.add(SignInAttempt(email=address, client=client[:64], at=now))
    session.flush()
    return None


def sign_in_failed() -> SignInFailed:
    """The one answer for an unknown address and a wrong password alike."""
    return SignInFailed(
        "Wrong email address or password.",
        hint="Check both, or ask an admin of your company to set a new password.",
    )


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the cookie value (shown once) and its CSRF token."""

    cookie: str
    csrf_token: str
    expires_at: datetime


def start_session(session: Session, *, user: User, now: datetime | None = None) -> NewSession:
    """Open a web session for `user`; the cookie value is returned once, only its hash stored."""
    now = now or _now()
    cookie = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=digest(cookie),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return NewSession(cookie=cookie, csrf_token=row.csrf_token, expires_at=row.expires_at)


def session_for_cookie(
    session: Session, cookie: str | None, *, now: datetime | None = None
) -> tuple[User, WebSession] | None:
    """The signed-in user and session for a cookie value, or None if unknown or expired."""
    if not cookie or len(cookie) > 200:
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == digest(cookie)))
    if row is None or _aware(row.expires_at) <= (now or _now()):
        return None
    user = session.get(User, row.user_id)
    return (user, row) if user is not None else None


def end_session(session: Session, cookie: str | None) -> None:
    """Sign out: delete the session the cookie names (nothing if none)."""
    if cookie:
        session.execute(delete(WebSession).where(WebSession.token_hash == digest(cookie)))


def check_csrf(expected: str, given: str | None) -> bool:
    """True when the form's (or header's) token is the session's, compared in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def create_api_token(session: Session, *, user: User, name: str = "") -> tuple[str, ApiToken]:
    """A new API token for `user`: returns the token (shown once) and its stored row."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=digest(token), prefix=token[:10], user_id=user.id, name=name.strip()[:100]
    )
    session.add(row)
    session.flush()
    return token, row


def user_for_token(session: Session, token: str | None) -> User | None:
    """The user an `Authorization: Bearer` token belongs to, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None:
        return None
    row.last_used_at = _now()
    return session.get(User, row.user_id)


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """The user's API tokens, oldest first (names and dates; never the token)."""
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    )


def revoke_api_token(session: Session, *, user: User, token_id: int) -> None:
    """Delete one of the user's API tokens; NotFound if it is not theirs."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"No API token {token_id}.")
    session.delete(row)


class WrongPassword(UserError):
    """The current password given to change it was not the user's."""

    kind = "wrong-password"


def change_password(
    session: Session,
    *,
    user: User,
    current: str,
    password: str,
    keep: WebSession | None = None,
    revoke_tokens: bool = False,
    now: datetime | None = None,
) -> int:
    """Set a new sign-in password, proven by the current one; the API tokens revoked.

    Ends every web session of the user but `keep` (the one asking), and with
    `revoke_tokens` deletes all their API tokens. A wrong current password raises
    `WrongPassword` and is counted like a failed sign-in (flushed: the caller commits it),
    so a stolen session cannot guess the password; `TooManyAttempts` once rate limited.
    """
    if len(password) < 8:
        raise BadInput("A password needs at least 8 characters.")
    now = now or _now()
    failures = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.email == user.email, SignInAttempt.at > now - WINDOW)
    )
    if (failures or 0) >= MAX_FAILURES:
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            "Too many wrong passwords.", hint=f"Wait {minutes} minutes and try again."
        )
    if not user.password_hash or not verify_password(user.password_hash, current):
        session.add(SignInAttempt(email=user.email, client="password-change", at=now))
        session.flush()
        raise WrongPassword(
            "The current password is not right.",
            hint="Type the password you signed in with; an admin can reset a forgotten one.",
        )
    user.password_hash = hash_password(password)
    others = delete(WebSession).where(WebSession.user_id == user.id)
    if keep is not None:
        others = others.where(WebSession.id != keep.id)
    session.execute(others)
    revoked = 0
    if revoke_tokens:
        revoked = len(list_api_tokens(session, user=user))
        session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.flush()
    return revoked
