"""Rules as the dashboard and the API hand them to `matching.rulebook`.

A rule is its conditions (all must hold) and exactly one action with its parameters —
the same words as `mailroom rules add` (cli/rules.py), so a rule made in the browser
reads the same in `mailroom rules list`. `trial` shows what a rule would do to recent
mail without changing anything: the rule is added inside the request's transaction,
tried by `rulebook.try_rule`, and the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from mailroom.db.models import Company
from mailroom.mail.blobs import BlobStore
from mailroom.matching.rulebook import TrialRow, add_rule, try_rule

CONDITION_FIELDS = (
    ("direction", "Direction", "inbound or outbound"),
    ("mailbox", "Mailbox", "the mailbox's address"),
    ("from", "From", "address, @domain, glob or re:regex"),
    ("to", "To", "address, @domain, glob or re:regex"),
    ("cc", "Cc", "address, @domain, glob or re:regex"),
    ("subject_contains", "Subject contains", "words"),
    ("subject_matches", "Subject matches", "a regex"),
    ("body_contains", "Body contains", "words"),
    ("body_matches", "Body matches", "a regex"),
    ("header", "Header equals", "Name: value"),
    ("header_matches", "Header matches", "Name: regex"),
)


def conditions_of(values: Mapping[str, str], has_attachment: str = "") -> dict[str, Any]:
    """The filled-in condition fields of a form (empty ones are not conditions)."""
    found: dict[str, Any] = {
        key: values[key].strip() for key, _l, _h in CONDITION_FIELDS if values.get(key, "").strip()
    }
    if has_attachment in ("yes", "no"):
        found["has_attachment"] = has_attachment == "yes"
    return found


def params_of(
    action: str, *, record_type: str = "lead", patterns: str = "", owner: str = "", tag: str = ""
) -> dict[str, Any]:
    """The action's parameters, as `mailroom rules add` builds them from its options."""
    if action == "extract":
        return {
            "type": record_type,
            "patterns": [p.strip() for p in patterns.splitlines() if p.strip()],
        }
    if action == "assign-owner":
        return {"owner": owner.strip()}
    if action == "tag":
        return {"tag": tag.strip()}
    return {}


def trial(
    session: Session,
    *,
    company: Company,
    blobs: BlobStore,
    name: str,
    last: int,
    new_rule: Mapping[str, Any] | None = None,
) -> list[TrialRow]:
    """What rule `name` (or the unsaved `new_rule`) would do to the last `last` messages.

    Read only: everything is rolled back, including the unsaved rule."""
    try:
        if new_rule is not None:
            add_rule(session, company=company, **new_rule)
        return try_rule(session, company=company, name=name, last=last, blobs=blobs)
    finally:
        session.rollback()
