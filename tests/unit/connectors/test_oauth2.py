"""The OAuth client's authorization step (connectors/oauth2.py), without a network: the URL
carries state, PKCE S256 and login_hint, and the redirect is checked against the state."""

from __future__ import annotations

import urllib.parse

import pytest

from mailroom.connectors.oauth2 import (
    OAuthEndpoints,
    PendingAuthorization,
    code_from_callback,
    start_authorization,
)
from mailroom.errors import BadInput, OAuthRevoked
from mailroom_testing.oauth_provider import s256_challenge, valid_verifier

ENDPOINTS = OAuthEndpoints(
    client_id="cid",
    client_secret="csecret",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
)
REDIRECT = "http://127.0.0.1:8123/oauth/callback"


def pending() -> PendingAuthorization:
    return start_authorization(
        ENDPOINTS,
        redirect_uri=REDIRECT,
        scopes=["https://mail.google.com/"],
        login_hint="ann@acme.example",
        extra_params=[("access_type", "offline"), ("prompt", "consent")],
    )


def test_the_authorization_url_has_state_pkce_s256_login_hint_and_offline_access() -> None:
    started = pending()
    url = urllib.parse.urlsplit(started.url)
    query = dict(urllib.parse.parse_qsl(url.query))
    assert f"{url.scheme}://{url.netloc}{url.path}" == ENDPOINTS.authorize_url
    assert query["response_type"] == "code" and query["client_id"] == "cid"
    assert query["redirect_uri"] == REDIRECT and query["state"] == started.state
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == s256_challenge(started.code_verifier)
    assert valid_verifier(started.code_verifier)
    assert query["login_hint"] == "ann@acme.example"
    assert query["scope"] == "https://mail.google.com/"
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert "csecret" not in started.url
    assert started.code_verifier not in repr(started)  # the state is in the URL by design
    assert pending().state != started.state


def test_a_redirect_with_another_state_is_refused() -> None:
    started = pending()
    with pytest.raises(BadInput, match="state"):
        code_from_callback(started, f"{REDIRECT}?code=abc&state=forged")
    assert code_from_callback(started, f"{REDIRECT}?code=abc&state={started.state}") == "abc"


def test_a_denied_sign_in_says_sign_in_again() -> None:
    started = pending()
    with pytest.raises(OAuthRevoked) as caught:
        code_from_callback(started, f"{REDIRECT}?error=access_denied&state={started.state}")
    assert caught.value.kind == "oauth_revoked" and caught.value.hint == "Sign in again."
