"""A link's reason in words, for people: the stored reasons (linker.py, manual.py, rules)
are stable codes for scripts (`address:main`, `domain`, `thread`, `manual`, `rule:NAME`);
pages show what they mean ("their address", "their company's domain", "by hand")."""

from __future__ import annotations

FIXED = {
    "address:main": "their address",
    "address:contact": "their contact's address",
    "domain": "their company's domain",
    "thread": "same thread as a linked case",
    "case-ref": "the subject names the case",
    "manual": "by hand",
}


def reason_words(reason: str) -> str:
    """The words for a stored link reason (unknown codes are shown as they are)."""
    if reason in FIXED:
        return FIXED[reason]
    kind, _, rest = reason.partition(":")
    if kind == "rule" and rest:
        return f"rule {rest}"
    if kind == "address" and rest:
        return f"their {rest.replace('_', ' ')} address"
    return reason
