"""The sync's fast ingest path on both databases: synced mail is linked at once and gets its
bodies on first read. The rest of the fast path: tests/unit/sync/test_ingest_fast_path.py."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Message
from mailroom.ingest.bodies import ensure_bodies, fill_in_background
from tests.helpers.matching_kit import fast_ingest, links_of, mail, setup, stored


def test_synced_mail_is_linked_at_once_and_gets_its_bodies_on_first_read(
    any_app: App,
) -> None:
    kit = setup(any_app)
    with transaction(any_app.sessions) as session:
        company = get_company(session, "Acme")
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
    result = fast_ingest(
        any_app,
        kit.ann_box,
        mail(message_id="f1@x", body="Forty widgets, please.", attachment=b"%PDF-1.4 quote"),
        mail(sender="ann@acme.example", to="jo@client.example", message_id="f2@x"),
    )
    assert (result.messages, result.links, result.copies) == (2, 2, 2)
    assert links_of(any_app, "f1@x") == {"contact:1": "address:main"}
    assert stored(any_app, "f1@x") == (False, "", 0)
    for _ in range(2):  # a second read parses nothing again and adds no attachment twice
        with any_app.sessions() as session:
            row = session.scalars(select(Message).where(Message.message_id == "f1@x")).one()
            ensure_bodies(session, row, any_app.blobs, commit=True)
    parsed, text, files = stored(any_app, "f1@x")
    assert parsed and "Forty widgets" in text and files == 1
    assert fill_in_background(any_app) == 1  # f2 is left; then none
    assert stored(any_app, "f2@x")[0] and fill_in_background(any_app) == 0
