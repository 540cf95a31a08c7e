"""Shared fixtures: a fresh Mailroom app on SQLite and on the real PostgreSQL.

PostgreSQL (127.0.0.1:5432, trust auth) gets one database per test run, made here and
dropped at the end; each test then starts from empty tables. Dovecot fixtures live in
tests/conftest_dovecot.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from mailroom.app import App, open_app
from mailroom.config import Settings
from mailroom.db.all_models import Base
from mailroom.security.secrets import encode_key, new_key

pytest_plugins = ["tests.conftest_web", "tests.conftest_dovecot", "tests.conftest_smtp"]

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MAILROOM_CORPUS", REPO.parent / "shared" / "corpus"))
PG_ADMIN = os.environ.get("MAILROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"The mail corpus is missing at {CORPUS} (set MAILROOM_CORPUS).")
    return CORPUS


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test run, dropped afterwards; yields its URL."""
    name = f"mailroom_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(data_dir: Path, url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url or f"sqlite:///{data_dir / 'mailroom.sqlite3'}",
        secret_key_b64=encode_key(new_key()),
    )


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[App]:
    app = open_app(make_settings(tmp_path / "data"))
    yield app
    app.close()


@pytest.fixture
def pg_app(tmp_path: Path, pg_database: str) -> Iterator[App]:
    app = open_app(make_settings(tmp_path / "data", pg_database))
    yield app
    with app.engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_app(request: pytest.FixtureRequest) -> App:
    """The same test on both databases."""
    fixture = "sqlite_app" if request.param == "sqlite" else "pg_app"
    app: App = request.getfixturevalue(fixture)
    return app
