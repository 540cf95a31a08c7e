"""Settings read from the environment: the public address people open the dashboard at."""

from __future__ import annotations

import pytest

from mailroom.config import DEFAULT_PUBLIC_URL, load_settings
from mailroom.errors import ConfigError


def test_the_public_url_defaults_to_the_local_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILROOM_PUBLIC_URL", raising=False)
    assert load_settings("/tmp/x").public_url == DEFAULT_PUBLIC_URL


def test_the_public_url_loses_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_PUBLIC_URL", " https://crm.example.com/mailroom/ ")
    assert load_settings("/tmp/x").public_url == "https://crm.example.com/mailroom"


@pytest.mark.parametrize(
    "value", ["crm.example.com", "ftp://crm.example.com", "https://", "https://a@b", "https://x?y"]
)
def test_a_public_url_that_is_not_an_http_address_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MAILROOM_PUBLIC_URL", value)
    with pytest.raises(ConfigError, match="MAILROOM_PUBLIC_URL must be an http"):
        load_settings("/tmp/x")
