"""What a person reads when a provider refuses a sign-in (services.oauth_signin), and the
dashboard sign-in form's checks (services.oauth_web.WebServers)."""

from __future__ import annotations

import pytest

from mailroom.errors import BadInput
from mailroom.services.oauth_signin import PROVIDER_ERRORS, provider_refusal
from mailroom.services.oauth_web import WebServers, state_digest


@pytest.mark.parametrize("code", sorted(PROVIDER_ERRORS))
def test_each_standard_provider_error_names_the_provider_and_a_fix(code: str) -> None:
    error = provider_refusal("microsoft", code)
    assert "Microsoft" in error.message or "Microsoft" in (error.hint or "")
    assert error.hint
    assert error.kind == "oauth_sign_in_refused"


def test_an_unknown_or_hostile_error_code_is_never_echoed() -> None:
    assert "weird_thing" in provider_refusal("google", "weird_thing").message
    hostile = provider_refusal("google", "<script>alert(1)</script>")
    assert "<script>" not in hostile.message and "unknown" in hostile.message


@pytest.mark.parametrize(
    "servers",
    [
        WebServers(backfill="forever"),
        WebServers(protocol="ews"),
        WebServers(security="none"),
        WebServers(smtp_security="none"),
        WebServers(address="not-an-address"),
    ],
)
def test_the_sign_in_form_refuses_what_mailroom_would_not_connect(servers: WebServers) -> None:
    with pytest.raises(BadInput):
        servers.checked()


def test_the_state_is_stored_only_as_its_digest() -> None:
    digest = state_digest("abc")
    assert len(digest) == 64 and "abc" not in digest
    assert digest == state_digest("abc") != state_digest("abd")
