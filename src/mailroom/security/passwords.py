"""User passwords hashed with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# Made on first use (argon2 is imported then: most commands never hash a password).
_hasher: PasswordHasher | None = None


def _get_hasher() -> PasswordHasher:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, salted, in the PHC string format."""
    return _get_hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (False for a wrong or unreadable hash)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _get_hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
