"""Storage on both databases: migrations match the models, unique keys, SQLite tuning."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from mailroom.app import App
from mailroom.crm.companies import add_company
from mailroom.db.all_models import Base
from mailroom.db.engine import transaction
from mailroom.db.models import Message


def _ours(obj: object, name: str | None, kind: str, reflected: bool, _: object) -> bool:
    """Procrastinate's own tables (migration 0019 applies its schema on PostgreSQL) are not
    Mailroom's models; everything else is compared."""
    table = getattr(obj, "table", obj) if kind != "table" else obj
    table_name = getattr(table, "name", name) or ""
    return not str(table_name).startswith("procrastinate_")


def test_migrations_create_exactly_the_models_schema(any_app: App) -> None:
    with any_app.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _ours})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_one_message_row_per_company_and_identity(any_app: App) -> None:
    with transaction(any_app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        session.add(Message(company_id=company.id, identity="a@b", message_id="a@b"))
    with pytest.raises(IntegrityError), transaction(any_app.sessions) as session:
        session.add(Message(company_id=company.id, identity="a@b", message_id="a@b"))


def test_same_identity_is_allowed_in_two_companies(any_app: App) -> None:
    with transaction(any_app.sessions) as session:
        one = add_company(session, name="One", domains=[])
        two = add_company(session, name="Two", domains=[])
        session.add(Message(company_id=one.id, identity="a@b", message_id="a@b"))
        session.add(Message(company_id=two.id, identity="a@b", message_id="a@b"))
