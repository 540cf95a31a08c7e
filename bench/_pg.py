"""A scratch PostgreSQL database for one bench run, made and dropped through an admin URL."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator


def temporary_pg(admin_url: str, label: str = "") -> tuple[str, Callable[[], None]]:
    """A new empty database: its SQLAlchemy URL (psycopg 3), and a function that drops it
    (with FORCE: a worker still connected does not keep it)."""
    import psycopg

    name = f"mailroom_bench_{label + '_' if label else ''}{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def kept_pg(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of the database `name`, made empty if missing and
    never dropped here (a bench reuses what it wrote before)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@contextlib.contextmanager
def scratch_pg(admin_url: str, label: str = "") -> Iterator[str]:
    """`temporary_pg` as a context: yields the URL, drops the database after."""
    url, drop = temporary_pg(admin_url, label)
    try:
        yield url
    finally:
        drop()
