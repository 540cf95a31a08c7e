"""End-to-end tier: the dashboard in real headless Chromium against a live server, the real
Dovecot and the SMTP server. Tests here are marked `e2e`.
"""

from __future__ import annotations

import pytest

from tests.helpers.tiers import mark_tier


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, "e2e")
