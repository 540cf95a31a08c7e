"""Mailroom refuses an interpreter without the email package's security fixes."""

from __future__ import annotations

import email.policy
import email.utils

import pytest

from mailroom.errors import RuntimeUnsafe
from mailroom.runtime import missing_email_fixes, require_safe_email_package


def test_this_interpreter_has_both_fixes() -> None:
    assert missing_email_fixes() == []


def test_missing_strict_parsing_is_refused_with_the_python_to_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(email.utils, "supports_strict_parsing")
    with pytest.raises(RuntimeUnsafe) as info:
        require_safe_email_package()
    assert "CVE-2023-27043" in info.value.message
    assert "/usr/bin/python3" in (info.value.hint or "")


def test_missing_header_verification_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email.policy, "default", object())
    with pytest.raises(RuntimeUnsafe, match="CVE-2024-6923"):
        require_safe_email_package()
