"""Markers by tier and by server, applied at collection so no test file has to say them.

Each tier folder's conftest.py (tests/unit, tests/integration, tests/interfaces, tests/e2e)
marks the tests under it with the tier's name; tests/conftest.py marks every test with the
servers its fixtures start (`dovecot`, `postgres`, `smtp`), so `-m "not dovecot"` works in
every tier. tests/unit/conftest.py refuses a unit test that asks for a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# Fixture name -> the server marker it implies (fixtures in tests/conftest*.py).
SERVER_FIXTURES = {
    "dovecot": "dovecot",
    "imap_user": "dovecot",
    "proxy": "dovecot",
    "pg_database": "postgres",
    "pg_app": "postgres",
    "smtp_server": "smtp",
    "smtp": "smtp",
    "oauth_dovecot": "dovecot",
    "oauth_user": "dovecot",
    "oauth_smtp_server": "smtp",
    "oauth_smtp": "smtp",
}
# Fixtures that start a browser or a live HTTP server (e2e only).
BROWSER_FIXTURES = {"browser", "live_server"}


def servers_of(item: pytest.Item) -> set[str]:
    """The servers a test's fixtures start: `any_app[postgres]` counts as PostgreSQL."""
    names = set(getattr(item, "fixturenames", ()))
    found = {SERVER_FIXTURES[name] for name in names & SERVER_FIXTURES.keys()}
    callspec = getattr(item, "callspec", None)
    if "any_app" in names and callspec is not None and callspec.params.get("any_app") == "postgres":
        found.add("postgres")
    return found


def items_under(items: list[pytest.Item], conftest_file: str) -> Iterator[pytest.Item]:
    """The collected tests that live in the folder of `conftest_file` (or below it)."""
    folder = Path(conftest_file).resolve().parent
    for item in items:
        if item.path.resolve().is_relative_to(folder):
            yield item


def mark_tier(items: list[pytest.Item], conftest_file: str, tier: str) -> list[pytest.Item]:
    """Add the marker `tier` to the tests under `conftest_file`'s folder; return them."""
    mine = list(items_under(items, conftest_file))
    for item in mine:
        item.add_marker(tier)
    return mine
