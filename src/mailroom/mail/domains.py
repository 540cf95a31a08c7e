"""Domain names as matching needs them: lower-case IDNA ASCII, or nothing.

A domain is normalised exactly as the domain part of an address is (mail.addresses), so a
company domain or an account domain compares equal to the domain of any address in mail.
"""

from __future__ import annotations

from mailroom.mail.addresses import normalise


def normalise_domain(value: str) -> str | None:
    """`Bücher.Example.` → `xn--bcher-kva.example`; `@example.com` → `example.com`; junk → None."""
    domain = value.strip().removeprefix("@")
    if not domain or "@" in domain:
        return None
    address = normalise(f"postmaster@{domain}")
    return address.rpartition("@")[2] if address else None
