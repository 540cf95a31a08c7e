"""The local OAuth provider's token rules (mailroom_testing/oauth_provider.py), without HTTP:
PKCE S256, single-use codes, short-lived access tokens, rotating refresh tokens, revocation."""

from __future__ import annotations

import pytest

from mailroom_testing.oauth_provider import (
    OAuthError,
    TokenAuthority,
    s256_challenge,
    valid_verifier,
)

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
REDIRECT = "http://127.0.0.1:8765/callback"


def authority(**kwargs: object) -> TokenAuthority:
    return TokenAuthority(client_id="cid", client_secret="secret", **kwargs)  # type: ignore[arg-type]


def code_for(auth: TokenAuthority, user: str = "ann@acme.example", verifier: str = VERIFIER) -> str:
    return auth.authorize(
        {
            "response_type": "code",
            "client_id": "cid",
            "redirect_uri": REDIRECT,
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
            "login_hint": user,
            "state": "xyz",
        }
    )


def test_s256_challenge_matches_rfc7636_appendix_b() -> None:
    assert s256_challenge(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert valid_verifier(VERIFIER)
    assert not valid_verifier("short")
    assert not valid_verifier(VERIFIER + "!")


def test_code_exchange_requires_the_matching_verifier_and_is_single_use() -> None:
    auth = authority()
    code = code_for(auth)
    other = "x" * 43
    with pytest.raises(OAuthError, match="invalid_grant"):
        auth.exchange_code(code, redirect_uri=REDIRECT, verifier=other)
    with pytest.raises(OAuthError, match="invalid_grant"):  # the failed try spent the code
        auth.exchange_code(code, redirect_uri=REDIRECT, verifier=VERIFIER)
    pair = auth.exchange_code(code_for(auth), redirect_uri=REDIRECT, verifier=VERIFIER)
    assert auth.introspect(pair.access_token)["username"] == "ann@acme.example"


def test_authorization_without_pkce_s256_is_refused() -> None:
    auth = authority()
    with pytest.raises(OAuthError, match="PKCE"):
        auth.authorize(
            {
                "response_type": "code",
                "client_id": "cid",
                "redirect_uri": REDIRECT,
                "code_challenge": VERIFIER,
                "code_challenge_method": "plain",
                "login_hint": "ann@acme.example",
            }
        )


def test_a_redirect_uri_must_be_registered_or_loopback() -> None:
    auth = authority(redirect_uris=("https://crm.example/oauth/callback",))
    assert auth.redirect_allowed("https://crm.example/oauth/callback")
    assert auth.redirect_allowed("http://[::1]:4000/cb")
    assert not auth.redirect_allowed("https://evil.example/cb")
    assert not auth.redirect_allowed("http://127.0.0.1.evil.example/cb")


def test_access_tokens_expire_after_their_lifetime() -> None:
    auth = authority(access_lifetime=3.0)
    pair = auth.issue("ann@acme.example")
    assert auth.introspect(pair.access_token)["active"] is True
    auth.advance(3.0)
    assert auth.introspect(pair.access_token) == {"active": False}


def test_refresh_rotates_and_the_old_refresh_token_dies() -> None:
    auth = authority()
    first = auth.issue("ann@acme.example")
    second = auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(OAuthError, match="invalid_grant"):
        auth.refresh(first.refresh_token)
    assert auth.refresh(second.refresh_token).access_token
    assert auth.refreshes == 2


def test_revoking_a_user_kills_their_tokens_only() -> None:
    auth = authority()
    ann, bob = auth.issue("ann@acme.example"), auth.issue("bob@acme.example")
    auth.revoke_user("ann@acme.example")
    assert auth.introspect(ann.access_token) == {"active": False}
    with pytest.raises(OAuthError, match="invalid_grant"):
        auth.refresh(ann.refresh_token)
    assert auth.introspect(bob.access_token)["active"] is True
    assert auth.refresh(bob.refresh_token)


def test_wrong_client_secret_is_invalid_client() -> None:
    with pytest.raises(OAuthError) as caught:
        authority().check_client("cid", "nope")
    assert caught.value.error == "invalid_client" and caught.value.status == 401
