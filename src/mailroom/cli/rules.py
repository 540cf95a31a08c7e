"""`mailroom rules add|edit|list|remove|test|run|order`, and the matching settings.

A rule is added with its conditions as options and exactly one `--action`:

    mailroom rules add web-leads --company Acme --to leads@acme.example \\
        --action create-lead
    mailroom rules add listing --company Acme --from @listings.example --action extract \\
        --record-type lead --pattern 'Name: (?P<name>.+)' --pattern 'Email: (?P<email>\\S+)'
    mailroom rules edit web-leads --company Acme --to sales@acme.example   # same place
    mailroom rules test web-leads --company Acme --last 100     # changes nothing
    mailroom rules run web-leads --company Acme --dry-run      # how many stored it would change
    mailroom rules run web-leads --company Acme                # apply it to stored mail
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailroom.cli.common import console, get_app, print_json
from mailroom.crm.companies import get_company
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.errors import BadInput, NotFound
from mailroom.matching.policy import (
    company_settings,
    set_participation,
    settings_json,
    update_settings,
)
from mailroom.matching.rulebook import (
    add_rule,
    edit_rule,
    get_rule,
    list_rules,
    order_rules,
    remove_rule,
    rule_json,
    try_rule,
)
from mailroom.matching.rules import ACTIONS

# The condition and action options `add` and `edit` share (typer reads them from the
# Annotated types, so both commands offer the same flags with the same help).
Direction = Annotated[str | None, typer.Option("--direction", help="inbound | outbound")]
MailboxOpt = Annotated[str | None, typer.Option("--mailbox", help="The mailbox's address.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Address, @domain, glob or re:regex.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Address, @domain, glob or re:regex.")]
CcOpt = Annotated[str | None, typer.Option("--cc", help="Address, @domain, glob or re:regex.")]
SubjectContains = Annotated[str | None, typer.Option("--subject-contains")]
SubjectMatches = Annotated[str | None, typer.Option("--subject-matches", help="A regex.")]
BodyContains = Annotated[str | None, typer.Option("--body-contains")]
BodyMatches = Annotated[str | None, typer.Option("--body-matches", help="A regex.")]
Header = Annotated[str | None, typer.Option("--header", help="'Name: value' (equals).")]
HeaderMatches = Annotated[str | None, typer.Option("--header-matches", help="'Name: regex'.")]
HasAttachment = Annotated[
    bool | None,
    typer.Option("--has-attachment/--no-attachment", help="Whether it has an attachment."),
]
Patterns = Annotated[list[str], typer.Option("--pattern", help="extract: a named-group regex.")]
Owner = Annotated[str | None, typer.Option("--owner", help="assign-owner: a user's email.")]
Tag = Annotated[str | None, typer.Option("--tag", help="tag: the tag to add.")]

rules_app = typer.Typer(
    help="Rules (ignore, create, extract, assign, tag) and matching settings.",
    no_args_is_help=True,
)


@rules_app.command("add")
def rules_add(
    name: str = typer.Argument(..., help="A short stable name, e.g. web-form-leads."),
    company: str = typer.Option(..., "--company"),
    action: str = typer.Option(..., "--action", help=" | ".join(ACTIONS)),
    description: str = typer.Option("", "--description"),
    direction: Direction = None,
    mailbox: MailboxOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    subject_contains: SubjectContains = None,
    subject_matches: SubjectMatches = None,
    body_contains: BodyContains = None,
    body_matches: BodyMatches = None,
    header: Header = None,
    header_matches: HeaderMatches = None,
    has_attachment: HasAttachment = None,
    record_type: str = typer.Option("lead", "--record-type", help="extract: the record type."),
    pattern: Patterns = [],  # noqa: B006  (typer copies option defaults)
    owner: Owner = None,
    tag: Tag = None,
    position: int = typer.Option(None, "--position", help="1 = first (default: last)."),
) -> None:
    """Add a rule; all its conditions must hold for its action to apply."""
    conditions = _conditions(
        direction, mailbox, from_, to, cc, subject_contains, subject_matches, body_contains,
        body_matches, header, header_matches, has_attachment,
    )  # fmt: skip
    params = _params(action, record_type=record_type, pattern=pattern, owner=owner, tag=tag)
    with transaction(get_app().sessions) as session:
        row = add_rule(
            session,
            company=get_company(session, company),
            name=name,
            action=action,
            conditions=conditions,
            params=params,
            description=description,
            position=position,
        )
        where = row.position
    console.print(f"Rule {name} added at position {where}.")


def _conditions(*values: Any) -> dict[str, Any]:
    """The condition options given (None = not given), keyed as `rules.CONDITIONS`."""
    keys = (
        "direction", "mailbox", "from", "to", "cc", "subject_contains", "subject_matches",
        "body_contains", "body_matches", "header", "header_matches", "has_attachment",
    )  # fmt: skip
    return {k: v for k, v in zip(keys, values, strict=True) if v is not None}


def _params(
    action: str, *, record_type: str | None, pattern: list[str], owner: str | None, tag: str | None
) -> dict[str, Any]:
    if action == "extract":
        return {"type": record_type or "lead", "patterns": pattern}
    if action == "assign-owner":
        return {"owner": owner or ""}
    if action == "tag":
        return {"tag": tag or ""}
    return {}


@rules_app.command("edit")
def rules_edit(
    name: str = typer.Argument(..., help="The rule to change (its name and place stay)."),
    company: str = typer.Option(..., "--company"),
    action: str = typer.Option(None, "--action", help=" | ".join(ACTIONS) + " (default: keep)"),
    description: str = typer.Option(None, "--description"),
    direction: Direction = None,
    mailbox: MailboxOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    subject_contains: SubjectContains = None,
    subject_matches: SubjectMatches = None,
    body_contains: BodyContains = None,
    body_matches: BodyMatches = None,
    header: Header = None,
    header_matches: HeaderMatches = None,
    has_attachment: HasAttachment = None,
    every_message: bool = typer.Option(
        False, "--every-message", help="Drop all conditions (the rule matches every message)."
    ),
    record_type: str = typer.Option(None, "--record-type", help="extract: the record type."),
    pattern: Patterns = [],  # noqa: B006  (typer copies option defaults)
    owner: Owner = None,
    tag: Tag = None,
) -> None:
    """Change a rule in place. Conditions given replace ALL its old conditions; what is
    not given (action, description, conditions, action options) stays as it was."""
    conditions = _conditions(
        direction, mailbox, from_, to, cc, subject_contains, subject_matches, body_contains,
        body_matches, header, header_matches, has_attachment,
    )  # fmt: skip
    if every_message and conditions:
        raise BadInput(
            "--every-message drops all conditions; it cannot be given with conditions.",
            hint="Give either --every-message or the new conditions.",
        )
    with transaction(get_app().sessions) as session:
        owner_company = get_company(session, company)
        current = get_rule(session, company=owner_company, name=name)
        new_action = action or current.action
        given = record_type is not None or pattern or owner is not None or tag is not None
        params = None
        if given:
            params = _params(
                new_action, record_type=record_type, pattern=pattern, owner=owner, tag=tag
            )
        row = edit_rule(
            session,
            company=owner_company,
            name=name,
            action=action,
            conditions={} if every_message else (conditions or None),
            params=params,
            description=description,
        )
        shown = rule_json(row)
    conds = ", ".join(f"{k}={v!r}" for k, v in shown["conditions"].items()) or "every message"
    console.print(
        f"Rule {name} changed (position {shown['position']}): {shown['action']} when {conds}",
        markup=False,
    )


@rules_app.command("list")
def rules_list(
    company: str = typer.Option(..., "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The rules in the order they run."""
    with get_app().sessions() as session:
        rows = [rule_json(r) for r in list_rules(session, company=get_company(session, company))]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No rules yet.")
    for row in rows:
        conds = ", ".join(f"{k}={v!r}" for k, v in row["conditions"].items()) or "every message"
        console.print(
            f"{row['position']}. {row['name']}: {row['action']} when {conds}", markup=False
        )


@rules_app.command("remove")
def rules_remove(
    name: str = typer.Argument(...), company: str = typer.Option(..., "--company")
) -> None:
    """Remove a rule (what it did stays done)."""
    with transaction(get_app().sessions) as session:
        remove_rule(session, company=get_company(session, company), name=name)
    console.print(f"Rule {name} removed.")


@rules_app.command("order")
def rules_order(
    names: list[str] = typer.Argument(..., help="Rule names, first to run first."),
    company: str = typer.Option(..., "--company"),
) -> None:
    """Run these rules first, in this order (the others follow in their order)."""
    with transaction(get_app().sessions) as session:
        rows = order_rules(session, company=get_company(session, company), names=names)
        order = [r.name for r in rows]
    console.print("Order: " + ", ".join(order))


@rules_app.command("test")
def rules_test(
    name: str = typer.Argument(...),
    company: str = typer.Option(..., "--company"),
    last: int = typer.Option(100, "--last", help="How many of the newest stored messages."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show what a rule would do to stored mail, changing nothing."""
    app = get_app()
    with app.sessions() as session:
        rows = try_rule(
            session, company=get_company(session, company), name=name, last=last, blobs=app.blobs
        )
        session.rollback()
    if as_json:
        print_json([r.to_json() for r in rows])
        return
    hits = [r for r in rows if r.matched]
    for row in hits:
        console.print(f"<{row.message_id}> {row.subject[:60]!r}: would {row.would}", markup=False)
    console.print(f"{len(hits)} of {len(rows)} messages match {name}; nothing was changed.")


@rules_app.command("run")
def rules_run(
    name: str = typer.Argument(...),
    company: str = typer.Option(..., "--company"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only count the stored messages it would change."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a rule on the mail already stored (a second run changes nothing)."""
    from mailroom.services.stored_rules import preview_rule_on_stored, run_rule_on_stored

    app = get_app()
    with app.sessions() as session:
        company_id = get_company(session, company).id
        if dry_run:
            status = preview_rule_on_stored(
                session, company_id=company_id, name=name, blobs=app.blobs
            )
    if not dry_run:
        status = run_rule_on_stored(app, company_id=company_id, name=name)
    if as_json:
        print_json(status.to_json())
        return
    verb = "would change" if dry_run else "changed"
    console.print(
        f"Rule {status.rule} ({status.action}) {verb} {status.affected} of "
        f"{status.total} stored messages." + (" Nothing was changed." if dry_run else ""),
        markup=False,
    )


@rules_app.command("settings")
def rules_settings(
    company: str = typer.Option(..., "--company"),
    opportunities: str = typer.Option(None, "--opportunities", help="all | recent | none"),
    log_bulk: bool = typer.Option(
        None, "--log-bulk/--no-log-bulk", help="Log list and automatic mail (never creates)."
    ),
    confidential: list[str] = typer.Option(
        None, "--confidential", help="A subject word marking mail confidential (repeatable)."
    ),
    max_per_sender: int = typer.Option(
        None, "--max-per-sender", help="Records created per sender per day (loop protection)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show or change the company's matching settings."""
    with transaction(get_app().sessions) as session:
        owner = get_company(session, company)
        if any(v is not None for v in (opportunities, log_bulk, max_per_sender)) or confidential:
            row = update_settings(
                session,
                company=owner,
                opportunity_policy=opportunities,
                log_bulk=log_bulk,
                confidential=confidential or None,
                max_created_per_sender=max_per_sender,
            )
        else:
            row = company_settings(session, owner.id)
        shown = settings_json(row)
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        console.print(f"{key}: {value}", markup=False)


@rules_app.command("participation")
def rules_participation(
    mailbox_id: int = typer.Argument(..., help="The mailbox's id (`mailroom mailbox list`)."),
    policy: str = typer.Option(..., "--policy", help="known-records | participated"),
) -> None:
    """Log all mail with known records, or only threads the mailbox's owner took part in."""
    with transaction(get_app().sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise NotFound(f"No mailbox {mailbox_id}.", hint="See `mailroom mailbox list`.")
        set_participation(session, mailbox=mailbox, policy=policy)
    console.print(f"Mailbox {mailbox_id} logs: {policy}.")


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
