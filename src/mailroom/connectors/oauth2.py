"""The client side of OAuth 2.0 (RFC 6749) for mailbox sign-in: the authorization code
flow with PKCE (RFC 7636, S256) and the refresh grant, on authlib's protocol functions.

Why authlib's parameter functions with the standard library's urllib rather than one of
its session classes: the sessions need httpx or requests at run time for two POSTs; the
protocol parts (the grant URI, the callback parsing, the PKCE challenge, random state
and verifier, the token's expiry) are authlib's either way.

Flow: `start_authorization` builds the provider's URL (state, S256 challenge, login_hint
and the provider's extra parameters such as Google's access_type=offline) and keeps the
state and verifier in memory; `code_from_callback` checks the redirect's state
(constant-time) and takes the code; `exchange_code` and `refresh` POST to the token
endpoint (client_secret_post) and return a `TokenSet`. A provider that rotates refresh
tokens (Microsoft) returns a new one with each refresh: the caller must store it at once.

Errors: `invalid_grant` is OAuthRevoked (sign in again; never retried), a refused client
is a ProtocolError naming `mailroom oauth set`, an unreachable endpoint a NetworkError.
No message carries a token, a code, the verifier or the client secret.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mailroom.errors import BadInput, NetworkError, OAuthRevoked, ProtocolError

SIGN_IN_AGAIN = "Sign in again."
NETWORK_HINT = "Check the network and the provider's token URL; the provider may be down."


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    """A registered client and the provider endpoints it uses."""

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """One sign-in under way: the URL to open, and what checks the redirect (memory only)."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint gave: tokens (memory only), expiry (epoch seconds), scope."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    scope: str
    rotated: bool = False  # a refresh returned a new refresh token: store it at once


def start_authorization(
    endpoints: OAuthEndpoints,
    *,
    redirect_uri: str,
    scopes: Sequence[str],
    login_hint: str,
    extra_params: Sequence[tuple[str, str]] = (),
) -> PendingAuthorization:
    """The authorization URL with state, PKCE S256 and login_hint; keep the result."""
    state = generate_token(32)
    verifier = generate_token(64)  # 64 of [A-Za-z0-9]: within RFC 7636's 43-128
    url = prepare_grant_uri(
        endpoints.authorize_url,
        endpoints.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        login_hint=login_hint,
        **dict(extra_params),
    )
    return PendingAuthorization(url, redirect_uri, state, verifier)


def code_from_callback(pending: PendingAuthorization, callback_url: str) -> str:
    """The code from the provider's redirect, once its state is this sign-in's."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback_url).query))
    state = query.get("state", "")
    if not secrets.compare_digest(state.encode(), pending.state.encode()):
        raise BadInput(
            "The sign-in answer does not belong to this sign-in (its state differs).",
            hint="Start the sign-in again from Mailroom.",
        )
    if "error" in query:
        said = query.get("error_description") or query["error"]
        raise OAuthRevoked(f"The provider refused the sign-in: {said}", hint=SIGN_IN_AGAIN)
    code = query.get("code")
    if not code:
        raise ProtocolError("The provider's redirect carried no authorization code.")
    return code


def exchange_code(
    endpoints: OAuthEndpoints, pending: PendingAuthorization, code: str, *, timeout: float = 30
) -> TokenSet:
    """The authorization_code grant, with the PKCE verifier."""
    answer = _token_request(
        endpoints,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        },
        timeout=timeout,
    )
    return _token_set(answer, previous_refresh=None)


def refresh(endpoints: OAuthEndpoints, refresh_token: str, *, timeout: float = 30) -> TokenSet:
    """The refresh_token grant; `rotated` tells whether a new refresh token came back."""
    answer = _token_request(
        endpoints,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=timeout,
    )
    return _token_set(answer, previous_refresh=refresh_token)


def _token_set(answer: dict[str, Any], *, previous_refresh: str | None) -> TokenSet:
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProtocolError("The provider's token answer carried no access token.")
    new_refresh = answer.get("refresh_token")
    if not isinstance(new_refresh, str) or not new_refresh:
        if previous_refresh is None:
            raise ProtocolError(
                "The provider issued no refresh token.",
                hint="Ask for offline access (Google: access_type=offline, prompt=consent; "
                "Microsoft: the offline_access scope).",
            )
        new_refresh = previous_refresh
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
    return TokenSet(
        access_token=access,
        refresh_token=new_refresh,
        expires_at=time.time() + lifetime,
        scope=str(answer.get("scope", "")),
        rotated=previous_refresh is not None and new_refresh != previous_refresh,
    )


def _token_request(
    endpoints: OAuthEndpoints, form: dict[str, str], *, timeout: float
) -> dict[str, Any]:
    """POST `form` (with the client's credentials) to the token endpoint; its JSON."""
    body = urllib.parse.urlencode(
        {**form, "client_id": endpoints.client_id, "client_secret": endpoints.client_secret}
    ).encode()
    request = urllib.request.Request(endpoints.token_url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _json_of(response.read(), endpoints.token_url)
    except urllib.error.HTTPError as exc:
        raise _refusal(exc, endpoints) from None
    except OSError as exc:  # URLError, TLS failures and timeouts are all OSErrors
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise NetworkError(
            f"The token endpoint {_where(endpoints.token_url)} could not be reached: {reason}",
            hint=NETWORK_HINT,
        ) from None


def _refusal(exc: urllib.error.HTTPError, endpoints: OAuthEndpoints) -> Exception:
    try:
        answer = _json_of(exc.read(), endpoints.token_url)
    except ProtocolError:
        answer = {}
    error = str(answer.get("error", "")) or f"HTTP {exc.code}"
    said = str(answer.get("error_description", "")).splitlines()[0:1]
    detail = f"{error}: {said[0]}" if said else error
    where = _where(endpoints.token_url)
    if error == "invalid_grant":
        return OAuthRevoked(
            f"The provider {where} refused the sign-in ({detail})", hint=SIGN_IN_AGAIN
        )
    if error in ("invalid_client", "unauthorized_client"):
        return ProtocolError(
            f"The provider {where} refused Mailroom's OAuth client ({detail})",
            hint="Check the client id and secret: mailroom oauth set google|microsoft …",
        )
    return ProtocolError(f"The token endpoint {where} answered {detail}")


def _json_of(data: bytes, url: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise ProtocolError(f"The token endpoint {_where(url)} did not answer with JSON.")
    return value


def _where(url: str) -> str:
    """scheme://host[:port]/path of `url`, without any query (never a secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
