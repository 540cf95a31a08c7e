"""Shared fixtures: a fresh Mailroom app on SQLite and on the real PostgreSQL.

The suite is in tiers, one folder each (`bin/test unit` runs one): tests/unit/<package>/
(no server), tests/integration/<area>/ (real Dovecot, PostgreSQL, SMTP),
tests/interfaces/{cli,api,web}/ and tests/e2e/ (Chromium). Each tier's conftest.py marks
its tests with the tier; this one marks every test with the servers its fixtures start
(`dovecot`, `postgres`, `smtp`; tests/helpers/tiers.py).

PostgreSQL (127.0.0.1:5432, trust auth) gets one database per test run, made here and
dropped at the end; each test then starts from empty tables. Dovecot fixtures live in
tests/conftest_dovecot.py, SMTP ones in tests/conftest_smtp.py, the web's in
tests/conftest_web.py; the servers themselves in the `mailroom_testing` package.

The test servers all listen on 127.0.0.1, which the web and the API refuse by default
(services.host_policy), so the whole suite runs with MAILROOM_ALLOW_PRIVATE_HOSTS=1, set
at import (before any app is opened; subprocesses inherit it). Tests of the refusal
unset it (tests/interfaces/test_private_hosts.py).

Hypothesis runs without its per-example deadline: on a shared machine a first example
that loads a library (tldextract, numpy) can take longer than 200 ms, and a deadline is a
timed assertion; speed is measured in bench/.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from mailroom.app import App, open_app
from mailroom.config import ALLOW_PRIVATE_HOSTS_ENV, Settings, private_hosts_allowed
from mailroom.db.all_models import Base
from mailroom.security.secrets import encode_key, new_key
from tests.helpers.tiers import servers_of

hypothesis_settings.register_profile("mailroom", deadline=None)
hypothesis_settings.load_profile("mailroom")

pytest_plugins = [
    "tests.conftest_web",
    "tests.conftest_dovecot",
    "tests.conftest_smtp",
    "tests.conftest_oauth",
    "tests.conftest_discovery",
]

os.environ[ALLOW_PRIVATE_HOSTS_ENV] = "1"

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
        allow_private_hosts=private_hosts_allowed(),
    )


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database brought to the latest schema by the migrations, once per run."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    open_app(make_settings(data_dir)).close()
    database = data_dir / "mailroom.sqlite3"
    assert not database.with_name(database.name + "-wal").exists()  # checkpointed on close
    return database


@pytest.fixture
def sqlite_app(tmp_path: Path, migrated_sqlite: Path) -> Iterator[App]:
    """A fresh app on its own copy of the migrated database (migrating per test cost ~80 ms,
    a quarter of the unit tier); `open_app` still checks the schema is current."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(migrated_sqlite, data_dir / "mailroom.sqlite3")
    app = open_app(make_settings(data_dir))
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the servers it uses, so `-m "not dovecot"` works in every tier."""
    for item in items:
        for server in sorted(servers_of(item)):
            item.add_marker(server)
