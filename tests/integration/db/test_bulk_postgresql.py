"""Bulk inserts on PostgreSQL (db/bulk.py): rows that go in by COPY read back as
SQLAlchemy's own INSERT stores them (JSON, dates, defaults, NULLs, non-ASCII text), in the
caller's transaction, and a unique key broken by one row fails the whole COPY."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from mailroom.app import App
from mailroom.crm.companies import add_company
from mailroom.db.bulk import insert_rows, insert_with_ids
from mailroom.db.engine import transaction
from mailroom.db.models import Message, MessageAddress
from tests.unit.db.test_bulk import ADDRESSES, MESSAGES, message


def test_rows_copied_in_read_back_as_sqlalchemys_own_insert_stores_them(pg_app: App) -> None:
    with transaction(pg_app.sessions) as session:
        company_id = add_company(session, name="A", domains=["acme.example"]).id
        session.flush()
        session.execute(insert(MESSAGES), [message(company_id, 1)])
        ids = insert_with_ids(
            session, MESSAGES, [message(company_id, n) for n in (2, 3)], key="identity"
        )
        rows = [
            {"message_id": ids[0], "company_id": company_id, "role": "to", "address": "ü@x"},
            {"message_id": ids[1], "company_id": company_id, "role": "cc", "address": "q@x"},
        ]
        insert_rows(session, ADDRESSES, rows)
        seen = session.scalars(select(Message.identity).where(Message.id.in_(ids))).all()
        assert sorted(seen) == ["m2@x", "m3@x"], "the caller's transaction sees them"
    with pg_app.engine.connect() as conn:
        own, two, three = conn.execute(select(MESSAGES).order_by(MESSAGES.c.id)).mappings()
    assert [two["id"], three["id"]] == ids
    differ = {"id", "identity", "message_id", "message_id_generated", "date_utc", "subject"}
    differ |= {"references", "created_at"}
    assert {k: v for k, v in own.items() if k not in differ} == {
        k: v for k, v in two.items() if k not in differ
    }
    assert two["date_utc"] == own["date_utc"] + timedelta(days=1)
    assert two["references"] == ["r2@x"] and two["subject"] == "Grüße 2"
    assert two["to_addresses"] == ["a@acme.example", "ü@acme.example"]
    assert two["created_at"] is not None and two["threaded"] is True
    with pg_app.sessions() as session:
        people = session.execute(
            select(MessageAddress.message_id, MessageAddress.address, MessageAddress.name)
        ).all()
    assert sorted(people) == sorted([(ids[0], "ü@x", ""), (ids[1], "q@x", "")])


def test_a_row_breaking_a_unique_key_fails_the_whole_copy(pg_app: App) -> None:
    with transaction(pg_app.sessions) as session:
        company_id = add_company(session, name="A", domains=["acme.example"]).id
    with pytest.raises(IntegrityError), transaction(pg_app.sessions) as session:
        insert_with_ids(
            session, MESSAGES, [message(company_id, n) for n in (1, 2, 1)], key="identity"
        )
    with pg_app.sessions() as session:
        assert session.scalars(select(Message.id)).all() == []
