"""Credentials: AES-GCM bound to their row, a 0600 key file, never stored or shown in clear."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.security.passwords import hash_password, verify_password
from mailroom.security.secrets import (
    SecretBox,
    create_key_file,
    load_key,
    mailbox_context,
    new_key,
)


def test_a_secret_decrypts_only_in_its_own_row() -> None:
    box = SecretBox(new_key())
    blob = box.encrypt("hunter2-pass", context=mailbox_context(1))
    assert b"hunter2" not in blob
    assert box.decrypt(blob, context=mailbox_context(1)) == "hunter2-pass"
    with pytest.raises(ConfigError, match="could not be decrypted"):
        box.decrypt(blob, context=mailbox_context(2))


def test_a_wrong_key_gives_a_clear_error() -> None:
    blob = SecretBox(new_key()).encrypt("pw", context="c")
    with pytest.raises(ConfigError) as info:
        SecretBox(new_key()).decrypt(blob, context="c")
    assert info.value.hint and "secret.key" in info.value.hint


def test_two_encryptions_of_one_password_differ() -> None:
    box = SecretBox(new_key())
    assert box.encrypt("same", context="c") != box.encrypt("same", context="c")


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    assert create_key_file(path)
    first = path.read_text()
    assert not create_key_file(path)
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_key(env_value=None, path=path)) == 32


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    create_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_key(env_value=None, path=path)


def test_missing_key_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_key(env_value=None, path=tmp_path / "nope.key")
    assert "mailroom init" in (info.value.hint or "")


def test_repr_never_shows_the_key() -> None:
    key = new_key()
    assert key.hex() not in repr(SecretBox(key))


def test_user_passwords_are_argon2_hashes() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not-a-hash", "x")
