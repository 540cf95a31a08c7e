"""Refuse to run on a Python whose `email` package lacks its security fixes.

Mailroom parses hostile mail. Two CPython fixes matter to it: CVE-2023-27043 (parseaddr /
getaddresses could be tricked into returning a different domain than the header named;
fixed by `email.utils.supports_strict_parsing` and `strict=True`) and CVE-2024-6923
(headers with embedded newlines could be serialised into new headers; fixed by
`email.policy.Policy.verify_generated_headers`). Debian's /usr/bin/python3 (3.11.2+deb12u6)
and CPython 3.13 carry both; pyenv's 3.11.7 and 3.12.1 on this machine do not.
"""

from __future__ import annotations

import email.policy
import email.utils
import sys

from mailroom.errors import RuntimeUnsafe

FIX_HINT = (
    "Run Mailroom with Debian's /usr/bin/python3 (3.11.2+deb12u6 or newer) or CPython 3.13+, "
    "e.g. through bin/mailroom, which picks such an interpreter and builds .venv with it."
)


def missing_email_fixes() -> list[str]:
    """The names of the security fixes this interpreter lacks (empty when safe)."""
    missing = []
    if not getattr(email.utils, "supports_strict_parsing", False):
        missing.append("CVE-2023-27043 (email.utils.supports_strict_parsing)")
    if not hasattr(email.policy.default, "verify_generated_headers"):
        missing.append("CVE-2024-6923 (email.policy.default.verify_generated_headers)")
    return missing


def require_safe_email_package() -> None:
    """Raise RuntimeUnsafe, naming the Python to use, when a fix is missing."""
    missing = missing_email_fixes()
    if missing:
        raise RuntimeUnsafe(
            f"This Python ({sys.executable}, {sys.version.split()[0]}) lacks the email "
            f"package's security fixes: {', '.join(missing)}.",
            hint=FIX_HINT,
        )
