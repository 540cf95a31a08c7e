"""The sync's fast ingest path on both databases: synced mail is linked at once and gets its
bodies on first read. The rest of the fast path: tests/unit/sync/test_ingest_fast_path.py."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Message
from mailroom.ingest.bodies import ensure_bodies, fill_bodies, fill_in_background
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


def test_two_fillers_at_once_parse_different_messages_each_once(any_app: App) -> None:
    kit = setup(any_app)
    fast_ingest(
        any_app,
        kit.ann_box,
        *(mail(message_id=f"b{n}@x", body=f"Body {n}", attachment=b"%PDF q") for n in range(6)),
    )
    postgresql = any_app.engine.dialect.name == "postgresql"
    with any_app.sessions() as first, first.begin():  # one filler holds its batch, uncommitted
        assert fill_bodies(first, blobs=any_app.blobs, limit=3) == 3
        if postgresql:  # the other skips the locked ones (SQLite has one writer at a time)
            with transaction(any_app.sessions) as second:
                assert fill_bodies(second, blobs=any_app.blobs, limit=10) == 3
    assert fill_in_background(any_app) == (0 if postgresql else 3)
    assert fill_in_background(any_app) == 0, "every message parsed"
    for n in range(6):
        parsed, text, files = stored(any_app, f"b{n}@x")
        assert parsed and f"Body {n}" in text and files == 1, "each parsed once, one attachment"
