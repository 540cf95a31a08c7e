"""Field extraction from template mail (web forms, listing sites) with named-group patterns.

A rule's patterns are regular expressions whose named groups say what they capture:
`name`, `email`, `phone`, `company`, `address`, `notes`, or any other name (a custom
field). Each pattern is searched in the subject and the body text; the first non-empty
capture of each name wins. Captured text is untrusted (invariant "untrusted mail",
docs/architecture.md): control characters and runs of blanks are collapsed, lengths are
capped, and an `email` is kept only if it normalises to a valid address — otherwise it is
reported, never stored half-right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.mail.addresses import normalise
from mailroom.matching.patterns import PatternError, compile_pattern

STANDARD = ("name", "email", "phone", "company", "address", "notes")
RECORD_FIELDS = ("phone", "company", "address", "notes")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANKS = re.compile(r"[ \t]+")
MAX_VALUE = {"notes": 5000, "address": 1000}


def _clean(name: str, value: str) -> str:
    value = _CONTROL.sub(" ", value)
    if name != "notes":
        value = " ".join(value.split())
    else:
        value = "\n".join(_BLANKS.sub(" ", line).strip() for line in value.splitlines()).strip()
    return value[: MAX_VALUE.get(name, 300)]


@dataclass(frozen=True, slots=True)
class Extracted:
    """The values captured, and what was captured but refused (e.g. a malformed email)."""

    values: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def email(self) -> str | None:
        """The captured `email` value, if any."""
        return self.values.get("email")

    def record_fields(self, record_type: str) -> dict[str, Any]:
        """The values as record fields: standard ones by name, others under `custom`."""
        fields: dict[str, Any] = {}
        custom: dict[str, str] = {}
        for key, value in self.values.items():
            if key in ("name", "email"):
                continue
            if key == "company" and record_type not in ("lead",):
                fields["account"] = value
            elif key in RECORD_FIELDS:
                fields[key] = value
            else:
                custom[key] = value
        if custom:
            fields["custom"] = custom
        return fields


def extract_fields(patterns: Sequence[str], text: str) -> Extracted:
    """Run each `name: regex` pattern over `text`; the named groups captured, and problems."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for pattern in patterns:
        try:
            match = compile_pattern(pattern).search(text)
        except PatternError:  # refused when the rule was saved; an older rule may hold one
            continue
        if match is None:
            continue
        for key, raw in match.groups.items():
            if not raw or key in values:
                continue
            value = _clean(key, raw)
            if not value:
                continue
            if key == "email":
                address = normalise(value.strip("<>()[]\"' "))
                if address is None:
                    problems.append(f"{value[:80]!r} is not an email address")
                    continue
                value = address
            values[key] = value
    return Extracted(values=values, problems=tuple(problems))
