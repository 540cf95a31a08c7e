"""Mailbox credentials encrypted at rest with AES-256-GCM (an AEAD cipher).

Why `cryptography`'s AESGCM rather than Google Tink: Tink's Python package pulls in
protobuf and native wheels for one primitive we use in one way; AESGCM is the same
construction (Tink's AEAD is AES-GCM too) with a 96-bit random nonce per encryption.

The key lives outside the database (invariant "secrets at rest", docs/architecture.md; why
AES-GCM from `cryptography`: docs/decisions/0002-aes-gcm-with-cryptography.md):
`$MAILROOM_SECRET_KEY` (url-safe base64 of 32 bytes) or the file `DATA_DIR/secret.key`,
created by `mailroom init` with mode 0600. Each ciphertext is bound to its row by
associated data (`mailbox:<id>:<purpose>`), so a secret copied into another row does not
decrypt. Stored form: b"v1" + nonce + ciphertext.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from mailroom.config import make_private_dir, open_private
from mailroom.errors import ConfigError

VERSION = b"v1"
NONCE_BYTES = 12


class SecretBox:
    """Encrypts and decrypts small secrets, each bound to a context string."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("The secret key must be 32 bytes (AES-256).")
        # Imported here: only commands that read or store credentials pay for it.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Seal `plaintext` with AES-GCM, bound to `context` (the associated data)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode())
        return VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        """Open what `encrypt` sealed under the same `context`; ConfigError if it cannot."""
        if not blob.startswith(VERSION):
            raise ConfigError("A stored credential has an unknown format.")
        nonce = blob[len(VERSION) : len(VERSION) + NONCE_BYTES]
        sealed = blob[len(VERSION) + NONCE_BYTES :]
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(nonce, sealed, context.encode()).decode("utf-8")
        except InvalidTag:
            raise ConfigError(
                "A stored credential could not be decrypted.",
                hint="The secret key is not the one it was encrypted with: restore the "
                "data dir's secret.key (or MAILROOM_SECRET_KEY), or enter the password again.",
            ) from None


def mailbox_context(mailbox_id: int, purpose: str = "password") -> str:
    """The associated data that binds a credential to its mailbox and purpose."""
    return f"mailbox:{mailbox_id}:{purpose}"


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(32)


def encode_key(key: bytes) -> str:
    """The key as url-safe base64 text (MAILROOM_SECRET_KEY, the key file)."""
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    """The key from its base64 text; ConfigError if it is not 32 bytes of base64."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except ValueError as exc:
        raise ConfigError(
            "The secret key is not valid base64.",
            hint="Set MAILROOM_SECRET_KEY to the url-safe base64 of 32 random bytes.",
        ) from exc
    if len(key) != 32:
        raise ConfigError("The secret key must decode to 32 bytes.")
    return key


def create_key_file(path: Path) -> bool:
    """Write a fresh key to `path` with mode 0600; False if a key file already exists."""
    make_private_dir(path.parent)
    try:
        fh = open_private(path, exclusive=True)
    except FileExistsError:
        return False
    with fh:
        fh.write((encode_key(new_key()) + "\n").encode())
    return True


def load_key(*, env_value: str | None, path: Path) -> bytes:
    """The key from the environment, else from the key file; a clear error when neither."""
    if env_value:
        return decode_key(env_value)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        raise ConfigError(
            f"No secret key at {path}.",
            hint="Run `mailroom init` to create one, or set MAILROOM_SECRET_KEY.",
        ) from None
    if mode & 0o077:
        raise ConfigError(
            f"The secret key file {path} is readable by others (mode {oct(mode)}).",
            hint=f"Run `chmod 600 {path}`.",
        )
    return decode_key(path.read_text())
