"""`mailroom why MESSAGE_ID`, and linking or unlinking a message by hand.

`why MESSAGE_ID [--company NAME] [--json]` is fixed by issue 5: `--json` prints exactly
`{"message_id": …, "links": [{"record": "TYPE:ID", "reason": …}], "skipped_by": …}`.
"""

from __future__ import annotations

from collections.abc import Callable

import typer
from sqlalchemy.orm import Session

from mailroom.cli.common import console, get_app, print_json
from mailroom.crm.companies import get_company
from mailroom.crm.records import get_record
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Message
from mailroom.matching.manual import link_by_hand, unlink_by_hand
from mailroom.matching.why import explain


def why(
    message_id: str = typer.Argument(..., help="The Message-ID, without angle brackets."),
    company: str = typer.Option(None, "--company"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every record a message links to and why, or the filter or rule that skipped it."""
    with get_app().sessions() as session:
        owner = get_company(session, company) if company else None
        answer = explain(session, message_id=message_id, company=owner)
    if as_json:
        print_json(answer.to_json())
        return
    for line in answer.lines():
        console.print(line, markup=False)


def _message_and_company(
    session: Session, message_id: str, company: str | None
) -> tuple[Message, Company]:
    owner = get_company(session, company) if company else None
    from mailroom.services.messages import find_message

    message, _ = find_message(session=session, ref=message_id, company=owner)
    found = session.get(Company, message.company_id)
    assert found is not None
    return message, found


def link(
    message_id: str = typer.Argument(..., help="The Message-ID, without angle brackets."),
    record: str = typer.Argument(..., help="TYPE:ID, e.g. case:12."),
    company: str = typer.Option(None, "--company"),
) -> None:
    """Link a message to a record by hand (reason `manual`; survives every re-sync)."""
    ref = _by_hand(link_by_hand, message_id, record, company)
    console.print(f"Linked to {ref} (manual).")


def unlink(
    message_id: str = typer.Argument(..., help="The Message-ID, without angle brackets."),
    record: str = typer.Argument(..., help="TYPE:ID, e.g. contact:3."),
    company: str = typer.Option(None, "--company"),
) -> None:
    """Remove a link by hand; automation never adds it again."""
    ref = _by_hand(unlink_by_hand, message_id, record, company)
    console.print(f"Unlinked from {ref}; automation will not link it again.")


def _by_hand(
    change: Callable[..., object], message_id: str, record: str, company: str | None
) -> str:
    """Link or unlink (`change`) the message and the record, committed; the record's ref."""
    with transaction(get_app().sessions) as session:
        message, owner = _message_and_company(session, message_id, company)
        target = get_record(session, company_id=owner.id, ref=record)
        change(session, message=message, record=target)
        ref = target.ref
    return ref


def register(app: typer.Typer) -> None:
    app.command("why")(why)
    app.command("link")(link)
    app.command("unlink")(unlink)
