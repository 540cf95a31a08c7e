"""Interfaces tier: the command line (cli/), the REST API (api/) and the dashboard's pages
(web/) as a user or a script drives them, through FastAPI's TestClient or `mailroom.cli.main`;
some also reach the real Dovecot and SMTP server. Tests here are marked `interfaces`.
"""

from __future__ import annotations

import pytest

from tests.helpers.tiers import mark_tier


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, "interfaces")
