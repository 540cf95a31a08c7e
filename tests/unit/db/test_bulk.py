"""Bulk inserts on SQLite (db/bulk.py): the executemany of tuples stores what SQLAlchemy's
own INSERT stores, and the ids it chooses are the rows' ids, in order, after the highest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select

from mailroom.app import App
from mailroom.crm.companies import add_company
from mailroom.db.bulk import insert_rows, insert_with_ids
from mailroom.db.engine import transaction
from mailroom.db.models import Message, MessageAddress

MESSAGES = cast(Table, Message.__table__)
ADDRESSES = cast(Table, MessageAddress.__table__)


def message(company_id: int, n: int) -> dict[str, Any]:
    """A message row with every kind of value the sync writes (JSON, dates, flags, NULLs)."""
    return {
        "company_id": company_id,
        "identity": f"m{n}@x",
        "message_id": f"m{n}@x",
        "message_id_generated": n % 2 == 0,
        "date_utc": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC) + timedelta(days=n),
        "date_text": "2026-01-02T05:04:05+02:00",
        "subject": f"Grüße {n}",
        "from_address": "jo@client.example",
        "to_addresses": ["a@acme.example", "ü@acme.example"],
        "cc_addresses": [],
        "references": [f"r{n}@x"],
        "in_reply_to": None,
        "raw_sha256": None,
        "bodies_parsed": False,
    }


def test_sqlite_bulk_rows_read_back_as_sqlalchemys_own_insert_stores_them(
    sqlite_app: App,
) -> None:
    with transaction(sqlite_app.sessions) as session:
        company_id = add_company(session, name="A", domains=["acme.example"]).id
        session.flush()
        session.execute(insert(MESSAGES), [message(company_id, 1)])
        [bulk_id] = insert_with_ids(session, MESSAGES, [message(company_id, 2)], key="identity")
    with sqlite_app.engine.connect() as conn:
        rows = conn.execute(select(MESSAGES).order_by(MESSAGES.c.id)).mappings().all()
        raw = conn.exec_driver_sql("SELECT * FROM messages ORDER BY id").all()
    own, bulk = (dict(r) for r in rows)
    assert bulk["id"] == bulk_id
    differ = {"id", "identity", "message_id", "message_id_generated", "date_utc", "subject"}
    differ |= {"references", "created_at"}
    assert {k: v for k, v in own.items() if k not in differ} == {
        k: v for k, v in bulk.items() if k not in differ
    }
    assert bulk["date_utc"] == own["date_utc"] + timedelta(days=1)
    assert bulk["references"] == ["r2@x"] and bulk["subject"] == "Grüße 2"
    assert bulk["created_at"] is not None and bulk["threaded"] is True
    # the stored text itself (what another reader of the file sees) has the same shape
    assert [type(v) for v in raw[0]] == [type(v) for v in raw[1]]
    assert raw[1][list(rows[0]).index("date_utc")] == "2026-01-04 03:04:05.000678"


def test_sqlite_bulk_ids_follow_the_highest_and_come_back_in_the_rows_order(
    sqlite_app: App,
) -> None:
    with transaction(sqlite_app.sessions) as session:
        company_id = add_company(session, name="A", domains=["acme.example"]).id
        first = insert_with_ids(
            session, MESSAGES, [message(company_id, n) for n in (5, 3, 4)], key="identity"
        )
        session.execute(delete(MESSAGES).where(MESSAGES.c.id == first[0]))
        second = insert_with_ids(
            session, MESSAGES, [message(company_id, n) for n in (9, 8)], key="identity"
        )
        insert_rows(
            session,
            ADDRESSES,
            [
                {"message_id": i, "company_id": company_id, "role": "to", "address": a}
                for i, a in zip(second, ("p@x", "q@x"), strict=True)
            ],
        )
    assert second == [first[-1] + 1, first[-1] + 2]
    with sqlite_app.sessions() as session:
        by_id = dict(session.execute(select(Message.id, Message.identity)).all())
        assert [by_id[i] for i in first[1:] + second] == ["m3@x", "m4@x", "m9@x", "m8@x"]
        people = session.execute(select(MessageAddress.message_id, MessageAddress.name)).all()
        assert sorted(people) == [(second[0], ""), (second[1], "")], "the name's default"


def test_bulk_rows_must_share_their_columns(sqlite_app: App) -> None:
    import pytest

    with sqlite_app.sessions() as session:
        company_id = add_company(session, name="A", domains=["acme.example"]).id
        short = message(company_id, 2)
        del short["subject"]
        with pytest.raises(ValueError, match="same columns"):
            insert_with_ids(session, MESSAGES, [message(company_id, 1), short], key="identity")
