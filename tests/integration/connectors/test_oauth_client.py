"""The OAuth client (connectors/oauth2.py, on authlib) against the local provider over HTTP:
code flow with PKCE, refresh with rotation, invalid_grant as OAuthRevoked, and a token the
test Dovecot accepts."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest

from mailroom.connectors.base import ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.connectors.oauth2 import (
    OAuthEndpoints,
    code_from_callback,
    exchange_code,
    refresh,
    start_authorization,
)
from mailroom.errors import NetworkError, OAuthRevoked, ProtocolError
from mailroom_testing.dovecot import DovecotServer, free_ports
from mailroom_testing.oauth_provider import OAuthProvider

REDIRECT = "http://127.0.0.1:8123/oauth/callback"


def endpoints(provider: OAuthProvider, secret: str | None = None) -> OAuthEndpoints:
    return OAuthEndpoints(
        client_id=provider.client_id,
        client_secret=secret or provider.client_secret,
        authorize_url=provider.authorize_url,
        token_url=provider.token_url,
    )


def follow_authorization(url: str) -> str:
    """GET the authorization URL (the provider auto-approves); the redirect's Location."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        response.read()
        assert response.status == 302, response.status
        return response.headers["Location"]
    finally:
        conn.close()


def sign_in(provider: OAuthProvider, user: str):  # type: ignore[no-untyped-def]
    ends = endpoints(provider)
    pending = start_authorization(ends, redirect_uri=REDIRECT, scopes=["mail"], login_hint=user)
    code = code_from_callback(pending, follow_authorization(pending.url))
    return exchange_code(ends, pending, code)


def test_code_flow_gives_tokens_dovecot_accepts(
    oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    tokens = sign_in(oauth_provider, oauth_user)
    assert tokens.scope == "mail" and not tokens.rotated
    assert tokens.access_token not in repr(tokens)
    settings = ServerSettings(
        host=oauth_dovecot.host,
        port=oauth_dovecot.imaps_port,
        username=oauth_user,
        access_token=tokens.access_token,
    )
    with ImapSource.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as source:
        assert source.list_folders()


def test_refresh_rotates_and_the_old_refresh_token_is_oauth_revoked(
    oauth_provider: OAuthProvider, oauth_user: str
) -> None:
    first = sign_in(oauth_provider, oauth_user)
    second = refresh(endpoints(oauth_provider), first.refresh_token)
    assert second.rotated and second.refresh_token != first.refresh_token
    assert oauth_provider.introspect(second.access_token)["username"] == oauth_user
    with pytest.raises(OAuthRevoked) as caught:
        refresh(endpoints(oauth_provider), first.refresh_token)
    assert caught.value.hint == "Sign in again."
    assert first.refresh_token not in str(caught.value)


def test_a_revoked_user_cannot_refresh(oauth_provider: OAuthProvider, oauth_user: str) -> None:
    tokens = sign_in(oauth_provider, oauth_user)
    oauth_provider.revoke_user(oauth_user)
    with pytest.raises(OAuthRevoked, match="invalid_grant"):
        refresh(endpoints(oauth_provider), tokens.refresh_token)


def test_a_wrong_client_secret_points_at_oauth_set_without_showing_it(
    oauth_provider: OAuthProvider, oauth_user: str
) -> None:
    tokens = oauth_provider.issue(oauth_user)
    with pytest.raises(ProtocolError) as caught:
        refresh(endpoints(oauth_provider, "wrong-secret-xyz"), tokens.refresh_token)
    assert "oauth set" in (caught.value.hint or "")
    assert "wrong-secret-xyz" not in str(caught.value)
    assert tokens.refresh_token not in str(caught.value)


def test_an_unreachable_token_endpoint_is_a_network_error(oauth_provider: OAuthProvider) -> None:
    [port] = free_ports(1)
    ends = OAuthEndpoints("cid", "secret", "http://127.0.0.1:1/a", f"http://127.0.0.1:{port}/t")
    with pytest.raises(NetworkError):
        refresh(ends, "some-refresh-token", timeout=5)
