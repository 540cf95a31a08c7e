"""Integration tier: Mailroom against real servers on loopback (the Dovecot, SMTP server and
fault proxy of `mailroom_testing`, and the real PostgreSQL), by area: connectors, sync,
matching, crm, db, dropbox, outbox (all sending). Tests here are marked `integration`, and
`dovecot` / `postgres` / `smtp` after the fixtures they use (tests/helpers/tiers.py).
"""

from __future__ import annotations

import pytest

from tests.helpers.tiers import mark_tier


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, "integration")
