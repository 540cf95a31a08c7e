"""A statement sent ahead on a PostgreSQL connection (db.ask_ahead): answered inside the
open transaction, its errors raised as SQLAlchemy's, the connection usable after, and
nothing sent ahead where that is not safe (no transaction yet, SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DataError

from mailroom.app import App
from mailroom.db import ask_ahead

PG_OWN_XACT = b"SELECT pg_current_xact_id_if_assigned()::text, $1::integer + 1"


def test_the_answer_comes_from_the_open_transaction(pg_app: App) -> None:
    with pg_app.sessions() as session:
        assert ask_ahead.ask(session.connection(), PG_OWN_XACT, [1]) is None, "not begun"
        own = session.scalar(text("SELECT pg_current_xact_id()::text"))  # begins, takes an id
        asked = ask_ahead.ask(session.connection(), PG_OWN_XACT, [41])
        assert asked is not None
        assert asked.answer() == (str(own).encode(), b"42")
        assert session.scalar(select(1)) == 1  # the connection goes on


def test_an_error_is_raised_as_sqlalchemys_and_close_reads_an_unread_answer(
    pg_app: App,
) -> None:
    with pg_app.sessions() as session:
        session.execute(select(1))
        asked = ask_ahead.ask(session.connection(), b"SELECT 1 / ($1::integer - 1)", [1])
        assert asked is not None
        with pytest.raises(DataError, match="division by zero"):
            asked.answer()
        session.rollback()
        session.execute(select(1))
        unread = ask_ahead.ask(session.connection(), b"SELECT $1::integer", [7])
        assert unread is not None
        unread.close()
        assert session.scalar(select(2)) == 2


def test_nothing_is_sent_ahead_on_sqlite(sqlite_app: App) -> None:
    with sqlite_app.sessions() as session:
        session.execute(select(1))
        assert ask_ahead.ask(session.connection(), b"SELECT 1", []) is None
