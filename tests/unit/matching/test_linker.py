"""Matching: every participant, accounts by contact and domain, threads, case references,
opportunities, reasons, manual links and tombstones, retro-linking (issue 5, points 1-5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record, update_record
from mailroom.db.engine import transaction
from mailroom.db.models import Record, RecordDomain
from mailroom.errors import BadInput
from mailroom.matching.index import domain_candidates, is_free_mail, registrable_domain
from mailroom.matching.linker import case_ref
from mailroom.matching.policy import update_settings
from tests.helpers.matching_kit import ingest, links_of, mail, record, setup


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("From", "jo@client.example"),
        ("To", "jo@client.example"),
        ("Cc", "jo@client.example"),
        ("Bcc", "jo@client.example"),
        ("Reply-To", "jo@client.example"),
        ("Sender", "jo@client.example"),
    ],
)
def test_every_participant_header_links_the_record_holding_the_address(
    sqlite_app: App, header: str, value: str
) -> None:
    ids = setup(sqlite_app)
    contact = record(sqlite_app, "contact", "Jo", "Jo@Client.Example")
    base = {"sender": "ann@acme.example", "to": "someone@elsewhere.example"}
    extra: list[tuple[str, str]] = []
    if header == "From":
        base["sender"] = value
    elif header == "To":
        base["to"] = value
    else:
        extra.append((header, value))
    ingest(sqlite_app, ids.ann_box, mail(**base, headers=extra, message_id="p@x"))
    assert links_of(sqlite_app, "p@x") == {f"contact:{contact}": "address:main"}


def test_a_custom_email_field_is_matched_and_named_in_the_reason(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    lead = record(sqlite_app, "lead", "Kim", "kim@a.example", "assistant@kim.example")
    ingest(sqlite_app, ids.ann_box, mail(sender="assistant@kim.example", message_id="c@x"))
    assert links_of(sqlite_app, "c@x") == {f"lead:{lead}": "address:email_2"}


def test_accounts_match_by_registrable_domain_but_never_free_mail(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    account = record(sqlite_app, "account", "Client", domains=["client.co.uk"])
    with transaction(sqlite_app.sessions) as session:  # a free-mail domain from old data
        session.add(RecordDomain(record_id=account, company_id=ids.company_id, domain="gmail.com"))
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="pat@eu.sales.client.co.uk", message_id="d1@x"),
        mail(sender="pat@otherclient.co.uk", message_id="d2@x"),
        mail(sender="pat@gmail.com", message_id="d3@x"),
    )
    assert links_of(sqlite_app, "d1@x") == {f"account:{account}": "domain"}
    assert links_of(sqlite_app, "d2@x") == {}
    assert links_of(sqlite_app, "d3@x") == {}


def test_a_free_mail_domain_cannot_be_given_to_an_account(sqlite_app: App) -> None:
    setup(sqlite_app)
    with pytest.raises(BadInput, match="free-mail"):
        record(sqlite_app, "account", "Gmail users", domains=["gmail.com"])


def test_public_suffix_rules_come_from_the_bundled_list() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert domain_candidates("x.y.example.com") == [
        "x.y.example.com",
        "y.example.com",
        "example.com",
    ]
    assert domain_candidates("someone.github.io") == ["someone.github.io"]  # private suffix
    assert is_free_mail("gmail.com") and is_free_mail("outlook.com")
    assert not is_free_mail("example.com")


def test_internal_addresses_never_link_even_when_a_record_holds_them(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    record(sqlite_app, "contact", "Ann (internal)", "ann@acme.example")
    client = record(sqlite_app, "contact", "Jo", "jo@client.example")
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="ann@acme.example", to="jo@client.example", message_id="i@x"),
    )
    assert links_of(sqlite_app, "i@x") == {f"contact:{client}": "address:main"}


def test_a_reply_to_a_message_on_a_contact_only_does_not_follow_the_thread(
    sqlite_app: App,
) -> None:
    ids = setup(sqlite_app)
    record(sqlite_app, "contact", "Jo", "jo@client.example")
    ingest(sqlite_app, ids.ann_box, mail(message_id="root@x"))
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="x@else.example", message_id="r@x", in_reply_to="root@x"),
    )
    assert links_of(sqlite_app, "r@x") == {}


def test_a_case_reference_in_the_subject_links_that_case(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    case = record(sqlite_app, "case", "Pump")
    other = setup_other_company_case(sqlite_app)
    subject = f"Re: {case_ref(case)} pump still broken, see also [Case #{other}]"
    ingest(
        sqlite_app, ids.ann_box, mail(sender="x@else.example", subject=subject, message_id="cr@x")
    )
    assert links_of(sqlite_app, "cr@x") == {f"case:{case}": "case-ref"}


def setup_other_company_case(app: App) -> int:
    from mailroom.crm.companies import add_company

    with transaction(app.sessions) as session:
        other = add_company(session, name="Other", domains=["other.example"])
        return add_record(session, company=other, record_type="case", name="Not ours").id


@pytest.mark.parametrize(("policy", "expected"), [("all", 2), ("recent", 1), ("none", 0)])
def test_opportunities_of_a_contact_link_by_the_company_policy(
    sqlite_app: App, policy: str, expected: int
) -> None:
    ids = setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Acme")
        update_settings(session, company=company, opportunity_policy=policy)
        contact = add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
        older = add_record(
            session, company=company, record_type="opportunity", name="Pumps", account=contact
        )
        newer = add_record(
            session, company=company, record_type="opportunity", name="Valves", account=contact
        )
        add_record(
            session,
            company=company,
            record_type="opportunity",
            name="Closed deal",
            account=contact,
            fields={"stage": "Closed Won"},
        )
        expected_ids = {"all": {older.id, newer.id}, "recent": {newer.id}, "none": set()}[policy]
    ingest(sqlite_app, ids.ann_box, mail(message_id="o@x"))
    found = {ref for ref in links_of(sqlite_app, "o@x") if ref.startswith("opportunity:")}
    assert len(found) == expected
    assert found == {f"opportunity:{i}" for i in expected_ids}


def test_an_edited_record_links_mail_of_its_new_address_and_domain(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="new@client.example", message_id="e1@x"),
        mail(sender="pat@eu.bigco.example", message_id="e2@x"),
    )
    contact = record(sqlite_app, "contact", "Jo", "jo@client.example")
    account = record(sqlite_app, "account", "BigCo")
    with transaction(sqlite_app.sessions) as session:
        update_record(
            session,
            record=session.get(Record, contact),
            emails=[EmailField("secondary", "new@client.example")],
        )  # type: ignore[arg-type]
        update_record(session, record=session.get(Record, account), domains=["bigco.example"])  # type: ignore[arg-type]
    assert links_of(sqlite_app, "e1@x") == {f"contact:{contact}": "address:secondary"}
    assert links_of(sqlite_app, "e2@x") == {f"account:{account}": "domain"}


def test_a_website_column_in_records_import_gives_accounts_their_domain(
    sqlite_app: App, tmp_path: Path
) -> None:
    from mailroom.crm.csv_import import import_csv

    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(sender="pat@mail.bigco.example", message_id="csv@x"))
    sheet = tmp_path / "accounts.csv"
    sheet.write_text("name,website\nBigCo,https://www.bigco.example/about\n", encoding="utf-8")
    with transaction(sqlite_app.sessions) as session:
        report = import_csv(
            session, company=get_company(session, "Acme"), path=sheet, record_type="account"
        )
        assert (report.created, report.errors) == (1, [])
        account = session.scalar(select(Record).where(Record.type == "account"))
        assert account is not None and [d.domain for d in account.domains] == ["bigco.example"]
        ref = account.ref
    assert links_of(sqlite_app, "csv@x") == {ref: "domain"}
