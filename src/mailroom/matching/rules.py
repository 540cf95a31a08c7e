"""Rules: tiny named objects (`name`, `description`, `check(mail)`), built from a table.

As in GNU Mailman 3's `rules/` and `chains/builtin.py`, a rule is a name the user sees
("why was this ignored? rule:newsletter-vendors"), a description, and a check; the
conditions it checks are themselves tiny objects made by a declarative table
(`CONDITIONS`: condition key → constructor), and a rule holds exactly one action from
`ACTIONS`. All conditions of a rule must hold (an empty rule matches everything).

Conditions (the JSON object stored with the rule):
- `direction`: `inbound` | `outbound`; `mailbox`: the mailbox's address;
- `from`, `to`, `cc`: an address, an `@domain` (subdomains too), a glob (`*@shop.*`)
  or a regular expression written `re:…`;
- `subject_contains`, `body_contains` (case-insensitive text), `subject_matches`,
  `body_matches` (regular expressions, case-insensitive);
- `header`: `Name: value` (equal, case-insensitive), `header_matches`: `Name: regex`;
- `has_attachment`: true | false.

Every pattern is compiled when the rule is saved, so a bad one is refused with a hint
instead of failing during sync. Patterns run in RE2, in time linear in the text
(matching/patterns.py): one a backtracking engine would need (backreferences, lookaround)
is refused there, with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import MatchRule
from mailroom.errors import BadInput
from mailroom.mail.addresses import normalise
from mailroom.mail.domains import normalise_domain
from mailroom.matching.patterns import Pattern, PatternError, compile_pattern
from mailroom.matching.view import MailView

log = logging.getLogger(__name__)

ACTIONS = (
    "ignore",
    "create-lead",
    "create-contact",
    "create-case",
    "extract",
    "assign-owner",
    "tag",
)
CREATE_TYPES = {"create-lead": "lead", "create-contact": "contact", "create-case": "case"}
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")


class Condition(Protocol):
    """One test a rule makes of a message."""

    @property
    def name(self) -> str: ...

    def check(self, mail: MailView) -> bool: ...


def _regex(value: Any, what: str) -> Pattern:
    """The one check of every user-written pattern, when a rule is saved (CLI, page, API)."""
    if not isinstance(value, str) or not value:
        raise BadInput(f"{what} needs a regular expression.")
    try:
        return compile_pattern(value)
    except PatternError as exc:
        raise BadInput(
            f"{what}: {value!r} is not a valid regular expression ({exc}).",
            hint="RE2 syntax: Python's `re` without backreferences or lookaround; "
            "escape literal dots and brackets with a backslash.",
        ) from None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{what} needs a non-empty text.")
    return value.strip()


@dataclass(frozen=True)
class AddressPattern:
    """An address, an `@domain`, a glob or `re:regex`, compared to normalised addresses."""

    text: str
    regex: Pattern | None = None

    @classmethod
    def parse(cls, value: Any, what: str) -> AddressPattern:
        raw = _text(value, what)
        if raw.startswith("re:"):
            return cls(raw, _regex(raw[3:], what))
        if any(c in raw for c in "*?["):
            return cls(raw.lower())
        if raw.startswith("@"):
            domain = normalise_domain(raw)
            if domain is None:
                raise BadInput(f"{what}: {raw!r} is not a domain.", hint="Write @example.com.")
            return cls(f"@{domain}")
        address = normalise(raw)
        if address is None:
            raise BadInput(
                f"{what}: {raw!r} is not an address, @domain, glob or re:pattern.",
                hint="Examples: jo@example.com, @example.com, *@shop.*, re:^sales",
            )
        return cls(address)

    def matches(self, address: str) -> bool:
        if self.regex is not None:
            return self.regex.search(address) is not None
        if any(c in self.text for c in "*?["):
            return fnmatchcase(address, self.text)
        if self.text.startswith("@"):
            domain = address.rpartition("@")[2]
            return domain == self.text[1:] or domain.endswith("." + self.text[1:])
        return address == self.text


@dataclass(frozen=True)
class DirectionIs:
    """The message is inbound, or outbound."""

    value: str
    name: str = "direction"

    @classmethod
    def make(cls, value: Any) -> DirectionIs:
        if value not in ("inbound", "outbound"):
            raise BadInput("direction is inbound or outbound.")
        return cls(str(value))

    def check(self, mail: MailView) -> bool:
        return mail.direction == self.value


@dataclass(frozen=True)
class MailboxIs:
    """The message came through a mailbox whose address matches."""

    pattern: AddressPattern
    name: str = "mailbox"

    @classmethod
    def make(cls, value: Any) -> MailboxIs:
        return cls(AddressPattern.parse(value, "mailbox"))

    def check(self, mail: MailView) -> bool:
        return mail.mailbox_address is not None and self.pattern.matches(mail.mailbox_address)


@dataclass(frozen=True)
class AddressIn:
    """Some address in one role (from, to, cc) matches the pattern."""

    role: str
    pattern: AddressPattern
    name: str = "address"

    def check(self, mail: MailView) -> bool:
        return any(self.pattern.matches(a) for a in mail.addresses(self.role))


def _address_in(role: str) -> Callable[[Any], Condition]:
    return lambda value: AddressIn(role, AddressPattern.parse(value, role), name=role)


@dataclass(frozen=True)
class TextTest:
    """The subject or body contains a text, or matches a regular expression."""

    part: str  # "subject" or "body"
    contains: str | None = None
    regex: Pattern | None = None
    name: str = "text"

    def check(self, mail: MailView) -> bool:
        text = mail.parsed.subject if self.part == "subject" else mail.body
        if self.regex is not None:
            return self.regex.search(text) is not None
        return self.contains is not None and self.contains.casefold() in text.casefold()


def _contains(part: str) -> Callable[[Any], Condition]:
    key = f"{part}_contains"
    return lambda value: TextTest(part, contains=_text(value, key), name=key)


def _matches(part: str) -> Callable[[Any], Condition]:
    key = f"{part}_matches"
    return lambda value: TextTest(part, regex=_regex(value, key), name=key)


@dataclass(frozen=True)
class HeaderTest:
    """A header (any of its occurrences) equals a value or matches a regex."""

    header: str
    equals: str | None = None
    regex: Pattern | None = None
    name: str = "header"

    @classmethod
    def parse(cls, value: Any, *, regex: bool) -> HeaderTest:
        what = "header_matches" if regex else "header"
        raw = _text(value, what)
        header, colon, rest = raw.partition(":")
        if not colon or not header.strip() or not re.fullmatch(r"[!-9;-~]+", header.strip()):
            raise BadInput(f"{what}: write it as 'Name: value', e.g. 'X-Source: webform'.")
        rest = rest.strip()
        if regex:
            return cls(header.strip().lower(), regex=_regex(rest, what), name=what)
        return cls(header.strip().lower(), equals=rest.casefold(), name=what)

    def check(self, mail: MailView) -> bool:
        for value in mail.header_values(self.header):
            if self.regex is not None and self.regex.search(value):
                return True
            if self.equals is not None and value.casefold() == self.equals:
                return True
        return False


@dataclass(frozen=True)
class HasAttachment:
    """The message has (or has no) attachment."""

    wanted: bool
    name: str = "has_attachment"

    @classmethod
    def make(cls, value: Any) -> HasAttachment:
        if not isinstance(value, bool):
            raise BadInput("has_attachment is true or false.")
        return cls(value)

    def check(self, mail: MailView) -> bool:
        return bool(mail.content.attachments) == self.wanted


CONDITIONS: Mapping[str, Callable[[Any], Condition]] = {
    "direction": DirectionIs.make,
    "mailbox": MailboxIs.make,
    "from": _address_in("from"),
    "to": _address_in("to"),
    "cc": _address_in("cc"),
    "subject_contains": _contains("subject"),
    "subject_matches": _matches("subject"),
    "body_contains": _contains("body"),
    "body_matches": _matches("body"),
    "header": lambda v: HeaderTest.parse(v, regex=False),
    "header_matches": lambda v: HeaderTest.parse(v, regex=True),
    "has_attachment": HasAttachment.make,
}


@dataclass(frozen=True, eq=False)
class Rule:
    """A named rule: every condition must hold; then its one action applies."""

    name: str
    description: str
    action: str
    conditions: tuple[Condition, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def check(self, mail: MailView) -> bool:
        return all(condition.check(mail) for condition in self.conditions)

    @property
    def creates(self) -> bool:
        return self.action in CREATE_TYPES or self.action == "extract"


def check_params(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The action's parameters, validated (owner existence is checked by rulebook)."""
    if action not in ACTIONS:
        raise BadInput(f"Unknown action {action!r}.", hint=f"Use one of: {', '.join(ACTIONS)}.")
    if action == "extract":
        record_type = params.get("type", "lead")
        if record_type not in ("lead", "contact", "case", "account", "opportunity"):
            raise BadInput(f"extract: unknown record type {record_type!r}.")
        patterns = params.get("patterns") or []
        if not isinstance(patterns, list) or not patterns:
            raise BadInput(
                "extract needs at least one pattern with named groups.",
                hint=r"e.g. --pattern 'Name: (?P<name>.+)' --pattern 'Email: (?P<email>\S+)'",
            )
        for pattern in patterns:
            if not _regex(pattern, "extract pattern").group_names:
                raise BadInput(
                    f"extract pattern {pattern!r} has no named group.",
                    hint="Name what it captures: (?P<email>\\S+@\\S+).",
                )
        return {"type": record_type, "patterns": list(patterns)}
    if action == "assign-owner":
        owner = normalise(str(params.get("owner") or ""))
        if owner is None:
            raise BadInput(
                "assign-owner needs --owner EMAIL (a user of the company).",
                hint='In the API: "params": {"owner": "EMAIL"}; see `mailroom user list`.',
            )
        return {"owner": owner}
    if action == "tag":
        if not str(params.get("tag") or "").strip():
            raise BadInput(
                "The tag action needs the tag to add.",
                hint='Give --tag TEXT (in the API: "params": {"tag": "TEXT"}).',
            )
        tag = _text(params.get("tag"), "tag")
        if len(tag) > 50:
            raise BadInput("A tag has at most 50 characters.")
        return {"tag": tag}
    return {}


def make_rule(
    *,
    name: str,
    action: str,
    conditions: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> Rule:
    """A compiled rule; raises BadInput naming the condition or parameter at fault."""
    if not NAME.fullmatch(name):
        raise BadInput(
            f"{name!r} is not a rule name.",
            hint="Use 1-60 lower-case letters, digits, '-', '_' or '.', e.g. web-form-leads.",
        )
    built: list[Condition] = []
    for key, value in conditions.items():
        maker = CONDITIONS.get(key)
        if maker is None:
            raise BadInput(
                f"Unknown condition {key!r}.", hint=f"Use: {', '.join(sorted(CONDITIONS))}."
            )
        built.append(maker(value))
    return Rule(
        name=name,
        description=description,
        action=action,
        conditions=tuple(built),
        params=check_params(action, params or {}),
    )


def load_rules(session: Session, *, company_id: int) -> tuple[Rule, ...]:
    """The company's enabled rules, compiled, in their declared order."""
    rows = session.scalars(
        select(MatchRule)
        .where(MatchRule.company_id == company_id, MatchRule.enabled)
        .order_by(MatchRule.position, MatchRule.id)
    )
    rules = []
    for row in rows:
        try:
            rules.append(
                make_rule(
                    name=row.name,
                    action=row.action,
                    conditions=row.conditions,
                    params=row.params,
                    description=row.description,
                )
            )
        except BadInput as exc:  # saved rules were validated; an old one may not be
            log.warning("rule %s of company %s skipped: %s", row.name, company_id, exc)
    return tuple(rules)
