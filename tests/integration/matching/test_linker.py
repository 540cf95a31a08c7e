"""Matching on both databases (SQLite and the real PostgreSQL): accounts by contact, threads
within a batch, manual links and tombstones, retro-linking, idempotent ingest.
The rest of matching: tests/unit/matching/test_linker.py."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record, update_record
from mailroom.db.engine import transaction
from mailroom.db.matching_models import LinkTombstone
from mailroom.db.models import Message, MessageLink, Record
from mailroom.matching.manual import link_by_hand, unlink_by_hand
from tests.helpers.matching_kit import count, ingest, links_of, mail, record, setup


def test_a_contacts_address_also_links_its_account(any_app: App) -> None:
    ids = setup(any_app)
    with transaction(any_app.sessions) as session:
        company = get_company(session, "Acme")
        account = add_record(session, company=company, record_type="account", name="Client Ltd")
        contact = add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
            account=account,
        )
        account_id, contact_id = account.id, contact.id
    ingest(any_app, ids.ann_box, mail(message_id="a@x"))
    assert links_of(any_app, "a@x") == {
        f"contact:{contact_id}": "address:main",
        f"account:{account_id}": "address:contact",
    }


def test_a_reply_to_a_message_on_a_case_links_the_case_even_in_the_same_batch(
    any_app: App,
) -> None:
    ids = setup(any_app)
    case = record(any_app, "case", "Broken pump", "jo@client.example")
    ingest(
        any_app,
        ids.ann_box,
        mail(message_id="root@x"),
        mail(sender="other@elsewhere.example", message_id="r1@x", in_reply_to="root@x"),
        mail(sender="third@another.example", message_id="r2@x", in_reply_to="r1@x"),
    )
    assert links_of(any_app, "root@x") == {f"case:{case}": "address:main"}
    assert links_of(any_app, "r1@x") == {f"case:{case}": "thread"}
    assert links_of(any_app, "r2@x") == {f"case:{case}": "thread"}


def test_a_link_removed_by_hand_is_never_re_added_and_a_manual_one_survives(
    any_app: App,
) -> None:
    ids = setup(any_app)
    jo = record(any_app, "contact", "Jo", "jo@client.example")
    case = record(any_app, "case", "Unrelated")
    raw = mail(message_id="keep@x")
    ingest(any_app, ids.ann_box, raw)
    with transaction(any_app.sessions) as session:
        message = session.scalar(select(Message).where(Message.message_id == "keep@x"))
        assert message is not None
        unlink_by_hand(session, message=message, record=session.get(Record, jo))  # type: ignore[arg-type]
        link_by_hand(session, message=message, record=session.get(Record, case))  # type: ignore[arg-type]
    ingest(any_app, ids.ann_box, raw)  # a re-sync (a new copy of the same message)
    ingest(any_app, ids.bob_box, raw)  # seen in another mailbox
    with transaction(any_app.sessions) as session:  # retro-linking of an edited record
        update_record(
            session,
            record=session.get(Record, jo),
            emails=[EmailField("secondary", "jo2@client.example")],
        )  # type: ignore[arg-type]
    assert links_of(any_app, "keep@x") == {f"case:{case}": "manual"}
    assert count(any_app, LinkTombstone) == 1


def test_a_record_created_later_links_the_stored_mail(any_app: App) -> None:
    ids = setup(any_app)
    ingest(
        any_app,
        ids.ann_box,
        mail(message_id="early@x"),
        mail(sender="x@other.example", message_id="no@x"),
    )
    contact = record(any_app, "contact", "Jo", "jo@client.example")
    assert links_of(any_app, "early@x") == {f"contact:{contact}": "address:main"}
    assert links_of(any_app, "no@x") == {}


def test_ingesting_the_same_batch_twice_adds_nothing(any_app: App) -> None:
    ids = setup(any_app)
    record(any_app, "contact", "Jo", "jo@client.example")
    batch = [mail(message_id=f"b{n}@x") for n in range(3)] + [
        mail(sender="ann@acme.example", to="bob@acme.example", message_id="int@x")
    ]
    first = ingest(any_app, ids.ann_box, *batch)
    links = count(any_app, MessageLink)
    second = ingest(any_app, ids.ann_box, *batch)
    assert (first.messages, first.links, first.skipped) == (4, 3, 1)
    assert (second.messages, second.links, second.skipped) == (0, 0, 0)
    assert count(any_app, MessageLink) == links
