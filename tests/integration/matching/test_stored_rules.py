"""Rules run on stored mail, on both databases: the preview count equals what the run then
changes and an independent count from the generated mail; a second run changes nothing;
links made by hand survive an ignore rule; skipped mail is never touched."""

from __future__ import annotations

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.db.engine import transaction
from mailroom.db.matching_models import MessageSkip, RuleOutcome
from mailroom.db.models import Message, MessageLink, Record
from mailroom.matching.manual import link_by_hand
from mailroom.matching.rulebook import add_rule
from mailroom.services.stored_rules import preview_rule_on_stored, run_rule_on_stored
from tests.helpers.matching_kit import ingest, links_of, mail, record, setup

PEOPLE = [f"person{n}@home{n % 3}.example" for n in range(7)]


def _web_form(n: int, person: str, *, automatic: bool = False) -> bytes:
    headers = [("Reply-To", f"Person {n} <{person}>")]
    if automatic:
        headers.append(("Auto-Submitted", "auto-generated"))
    return mail(
        sender="Web form <forms@webform.example>",
        to="ann@acme.example",
        subject=f"Contact form {n}",
        message_id=f"form{n}@webform.example",
        headers=headers,
        minutes=n,
    )


def _state(app: App) -> tuple[int, ...]:
    with app.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Record, MessageLink, MessageSkip, RuleOutcome, Message)
        )


def _add_rule(app: App, name: str, action: str, conditions: dict[str, object]) -> None:
    with transaction(app.sessions) as session:
        add_rule(
            session,
            company=get_company(session, "Acme"),
            name=name,
            action=action,
            conditions=conditions,
        )


def _company_id(app: App) -> int:
    with app.sessions() as session:
        return get_company(session, "Acme").id


def test_create_rule_on_stored_mail_preview_equals_run_and_a_second_run_changes_nothing(
    any_app: App,
) -> None:
    ids = setup(any_app)
    forms = [_web_form(n, PEOPLE[n % len(PEOPLE)]) for n in range(10)]  # 3 people write twice
    automatic = [_web_form(100 + n, PEOPLE[0], automatic=True) for n in range(2)]
    other = [mail(sender="jo@client.example", subject="Unrelated", minutes=60)]
    ingest(any_app, ids.ann_box, *forms, *automatic, *other)
    _add_rule(any_app, "web-leads", "create-lead", {"from": "@webform.example"})
    company_id = _company_id(any_app)
    with any_app.sessions() as session:
        preview = preview_rule_on_stored(
            session, company_id=company_id, name="web-leads", blobs=any_app.blobs
        )
    # Independent count: the non-automatic web-form messages (automatic mail never creates).
    assert (preview.affected, preview.scanned) == (10, 13)
    before = _state(any_app)
    run = run_rule_on_stored(any_app, company_id=company_id, name="web-leads")
    assert (run.state, run.affected, run.scanned) == ("done", preview.affected, 13)
    after = _state(any_app)
    assert after[0] - before[0] == len(set(PEOPLE))  # one lead per person, never two
    assert after[1] - before[1] == 10  # each form message linked to its person's lead
    assert links_of(any_app, "form3@webform.example") == {
        next(iter(links_of(any_app, "form3@webform.example"))): "rule:web-leads"
    }
    assert links_of(any_app, "form100@webform.example") == {}
    with any_app.sessions() as session:
        again = preview_rule_on_stored(
            session, company_id=company_id, name="web-leads", blobs=any_app.blobs
        )
    assert again.affected == 0
    assert run_rule_on_stored(any_app, company_id=company_id, name="web-leads").affected == 0
    assert _state(any_app) == after


def test_ignore_rule_on_stored_mail_skips_and_unlinks_but_keeps_links_made_by_hand(
    any_app: App,
) -> None:
    ids = setup(any_app)
    jo = record(any_app, "contact", "Jo", "jo@client.example")
    deal = record(any_app, "case", "Order 7")
    news = [
        mail(sender="jo@client.example", subject=f"Newsletter {n}", message_id=f"news{n}@x")
        for n in range(4)
    ]
    ingest(any_app, ids.ann_box, *news, mail(sender="jo@client.example", subject="Real question"))
    with transaction(any_app.sessions) as session:
        message = session.scalars(select(Message).where(Message.message_id == "news0@x")).one()
        case = session.get(Record, deal)
        assert case is not None
        link_by_hand(session, message=message, record=case)
    _add_rule(any_app, "no-newsletters", "ignore", {"subject_contains": "newsletter"})
    company_id = _company_id(any_app)
    with any_app.sessions() as session:
        preview = preview_rule_on_stored(
            session, company_id=company_id, name="no-newsletters", blobs=any_app.blobs
        )
    assert preview.affected == 4
    run = run_rule_on_stored(any_app, company_id=company_id, name="no-newsletters")
    assert run.affected == 4
    assert links_of(any_app, "news1@x") == {}
    assert links_of(any_app, "news0@x") == {f"case:{deal}": "manual"}  # by hand: kept
    assert f"contact:{jo}" in links_of(any_app, next(iter(_ids_of(any_app, "Real question"))))
    state = _state(any_app)
    assert run_rule_on_stored(any_app, company_id=company_id, name="no-newsletters").affected == 0
    assert _state(any_app) == state


def _ids_of(app: App, subject: str) -> list[str]:
    with app.sessions() as session:
        return list(session.scalars(select(Message.message_id).where(Message.subject == subject)))
