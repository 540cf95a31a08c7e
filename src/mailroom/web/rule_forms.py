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

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from mailroom.db.matching_models import MatchRule
from mailroom.db.models import Company
from mailroom.digits import is_number
from mailroom.errors import BadInput
from mailroom.mail.blobs import BlobStore
from mailroom.matching.rulebook import TrialRow, add_rule, edit_rule, try_rule

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


class RuleForm(BaseModel):
    """The fields of the add and edit forms (the edit form leaves `name` and `position`)."""

    name: str = Field("", max_length=60)
    action: str = Field("ignore", max_length=20)
    description: str = Field("", max_length=500)
    direction: str = Field("", max_length=500)
    mailbox: str = Field("", max_length=500)
    from_: str = Field("", alias="from", max_length=500)
    to: str = Field("", max_length=500)
    cc: str = Field("", max_length=500)
    subject_contains: str = Field("", max_length=500)
    subject_matches: str = Field("", max_length=500)
    body_contains: str = Field("", max_length=500)
    body_matches: str = Field("", max_length=500)
    header: str = Field("", max_length=500)
    header_matches: str = Field("", max_length=500)
    has_attachment: str = Field("", max_length=3)
    record_type: str = Field("lead", max_length=20)
    patterns: str = Field("", max_length=5000)
    owner: str = Field("", max_length=500)
    tag: str = Field("", max_length=500)
    position: str = Field("", max_length=4)
    do: str = Field("save", max_length=10)

    def shown(self) -> dict[str, Any]:
        """The values to fill the form in again (keys as the template's field names)."""
        values = self.model_dump(by_alias=True)
        values.pop("do")
        return values

    def rule(self) -> dict[str, Any]:
        """The rule as `rulebook.add_rule` takes it; BadInput for a bad position."""
        where = self.position.strip()
        if where and not is_number(where):
            raise BadInput("The position must be a whole number.", hint="1 runs first.")
        return {
            "name": self.name.strip(),
            "action": self.action,
            "conditions": conditions_of(self.shown(), self.has_attachment),
            "params": params_of(
                self.action,
                record_type=self.record_type,
                patterns=self.patterns,
                owner=self.owner,
                tag=self.tag,
            ),
            "description": self.description.strip(),
            "position": int(where) if where else None,
        }


def form_of(row: MatchRule) -> dict[str, Any]:
    """A saved rule as the filled-in form (for the prefilled edit form)."""
    conds = dict(row.conditions)
    attach = conds.pop("has_attachment", None)
    params = dict(row.params)
    found: dict[str, Any] = {key: str(conds.get(key, "")) for key, _l, _h in CONDITION_FIELDS}
    found |= {"name": row.name, "action": row.action, "description": row.description}
    found |= {"has_attachment": "" if attach is None else ("yes" if attach else "no")}
    found |= {
        "record_type": str(params.get("type", "lead")),
        "patterns": "\n".join(str(p) for p in params.get("patterns", ())),
        "owner": str(params.get("owner", "")),
        "tag": str(params.get("tag", "")),
        "position": str(row.position),
    }
    return found


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
    edited: Mapping[str, Any] | None = None,
) -> list[TrialRow]:
    """What rule `name` (or the unsaved `new_rule`, or rule `name` changed as `edited`
    says) would do to the last `last` messages.

    Read only: everything is rolled back, including the unsaved rule or change."""
    try:
        if new_rule is not None:
            add_rule(session, company=company, **new_rule)
        if edited is not None:
            edit_rule(session, company=company, name=name, **edited)
        return try_rule(session, company=company, name=name, last=last, blobs=blobs)
    finally:
        session.rollback()
