"""A real OAuth 2.0 authorization server on 127.0.0.1 for tests: what Google and Microsoft
are to Mailroom, small enough to read.

`OAuthProvider()` runs the standard library's HTTP server in a thread and serves:

- `GET /authorize` (RFC 6749 §4.1.1): auto-approves the user named by `login_hint` and
  redirects to `redirect_uri` with `code` and `state`; with `authority.consent_page` set it
  first shows a consent page whose Allow redirects with the code and Deny with
  `error=access_denied` (the browser tests press them). PKCE is required (RFC 7636, S256
  only, as the issue asks of Mailroom). The redirect URI must be registered, or a loopback
  address on any port (RFC 8252 §7.3, what the CLI's sign-in listens on).
- `POST /token` (§4.1.3, §6): the `authorization_code` grant (code, redirect URI and the PKCE
  verifier checked) and the `refresh_token` grant. Access tokens live a few seconds
  (`access_lifetime`); refresh tokens rotate and the old one dies the moment a new one is
  issued (stricter than Microsoft, which lets the old one live on). A revoked, rotated,
  unknown or expired grant answers `400 {"error": "invalid_grant"}` (§5.2). The client
  authenticates with HTTP Basic (`client_secret_basic`) or in the form (`client_secret_post`).
- `POST /introspect` (RFC 7662): `{"active": true, "username": …, "exp": …}` for a live
  access token, `{"active": false}` for anything else. Dovecot's oauth2 passdb
  (`introspection_mode = post`) and the test SMTP server check tokens here.

Test controls: `revoke_user(user)` kills every token of a user (a password change, an
admin's revocation), `advance(seconds)` moves the provider's clock so tokens expire without
a test waiting, `issue(user)` hands out a token pair without the browser step.

The token logic is `TokenAuthority`, apart from HTTP, so unit tests drive it directly.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
_LOOPBACK = ("http://127.0.0.1:", "http://127.0.0.1/", "http://[::1]:", "http://[::1]/")


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 code challenge of `verifier`: BASE64URL(SHA256(verifier)), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_verifier(verifier: str) -> bool:
    """Whether `verifier` is a well-formed PKCE code verifier (43-128 unreserved chars)."""
    return bool(_VERIFIER_RE.match(verifier))


class OAuthError(Exception):
    """An OAuth error answer (RFC 6749 §5.2): `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class TokenPair:
    """What the token endpoint answers: a bearer access token and its refresh token."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str

    def as_json(self) -> dict[str, Any]:
        """The token response body (RFC 6749 §5.1)."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class _Code:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class _Access:
    user: str
    client_id: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class _Refresh:
    user: str
    client_id: str
    scope: str


class TokenAuthority:
    """Codes, access tokens and rotating refresh tokens, with a clock tests can move.

    Thread-safe: the HTTP server's threads and the test share one instance.
    """

    CODE_LIFETIME = 60.0

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: tuple[str, ...] = (),
        access_lifetime: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.access_lifetime = access_lifetime
        self._clock = clock
        self._offset = 0.0
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self.refreshes = 0  # how many refresh grants succeeded (tests assert rotation)
        self.consent_page = False  # True: /authorize shows Allow/Deny before redirecting

    def now(self) -> float:
        """The provider's time: the clock plus whatever `advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the provider's clock forward: tokens expire as if `seconds` had passed."""
        with self._lock:
            self._offset += seconds

    # -- the authorization endpoint --------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> str:
        """Check an authorization request and return a one-time code for its user."""
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code")
        self.check_client_id(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if not self.redirect_allowed(redirect_uri):
            raise OAuthError("invalid_request", "redirect_uri is not registered")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        user = params.get("login_hint", "")
        if not user:
            raise OAuthError("invalid_request", "login_hint names the user to approve")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                user=user,
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                scope=params.get("scope", ""),
                expires_at=self.now() + self.CODE_LIFETIME,
            )
        return code

    def redirect_allowed(self, uri: str) -> bool:
        """A registered redirect URI, or a loopback one on any port (RFC 8252 §7.3)."""
        return uri in self.redirect_uris or uri.startswith(_LOOPBACK)

    def check_client_id(self, client_id: str) -> None:
        """Raise `invalid_client` unless `client_id` is the registered client."""
        if not secrets.compare_digest(client_id.encode(), self.client_id.encode()):
            raise OAuthError("invalid_client", "unknown client", 401)

    def check_client(self, client_id: str, client_secret: str) -> None:
        """Raise `invalid_client` unless these are the registered client's credentials."""
        self.check_client_id(client_id)
        if not secrets.compare_digest(client_secret.encode(), self.client_secret.encode()):
            raise OAuthError("invalid_client", "wrong client secret", 401)

    # -- the token endpoint ----------------------------------------------------------------

    def exchange_code(self, code: str, *, redirect_uri: str, verifier: str) -> TokenPair:
        """The authorization_code grant: the code is spent whatever the outcome."""
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None or grant.expires_at <= self.now():
            raise OAuthError("invalid_grant", "unknown, used or expired authorization code")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's")
        if not valid_verifier(verifier):
            raise OAuthError("invalid_grant", "malformed code_verifier")
        if not secrets.compare_digest(s256_challenge(verifier), grant.challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        return self.issue(grant.user, scope=grant.scope)

    def refresh(self, refresh_token: str) -> TokenPair:
        """The refresh_token grant: the old refresh token dies, a new pair is issued."""
        with self._lock:
            grant = self._refresh.pop(refresh_token, None)
        if grant is None:
            raise OAuthError("invalid_grant", "unknown, rotated or revoked refresh token")
        pair = self.issue(grant.user, scope=grant.scope)
        with self._lock:
            self.refreshes += 1
        return pair

    def issue(self, user: str, *, scope: str = "") -> TokenPair:
        """A fresh access token and refresh token for `user` (tests may skip the browser)."""
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            expires_at = self.now() + self.access_lifetime
            self._access[access] = _Access(user, self.client_id, scope, expires_at)
            self._refresh[refresh] = _Refresh(user, self.client_id, scope)
        return TokenPair(access, refresh, max(1, int(self.access_lifetime)), scope)

    # -- introspection and control ---------------------------------------------------------

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 §2.2: the live access token's user and expiry, else `active: false`."""
        with self._lock:
            grant = self._access.get(token)
        if grant is None or grant.expires_at <= self.now():
            return {"active": False}
        return {
            "active": True,
            "username": grant.user,
            "client_id": grant.client_id,
            "scope": grant.scope,
            "token_type": "Bearer",
            "exp": int(grant.expires_at),
        }

    def revoke_user(self, user: str) -> None:
        """Kill every access and refresh token of `user` (revoked consent, new password)."""
        with self._lock:
            self._access = {k: v for k, v in self._access.items() if v.user != user}
            self._refresh = {k: v for k, v in self._refresh.items() if v.user != user}


class _Handler(BaseHTTPRequestHandler):
    """HTTP face of the authority: /authorize, /token, /introspect."""

    server: _Server

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/authorize/decide":
            self._decide(params)
            return
        if url.path != "/authorize":
            self._json(404, {"error": "not_found"})
            return
        try:
            code = self.server.authority.authorize(params)
        except OAuthError as exc:
            self._json(exc.status, {"error": exc.error, "error_description": exc.description})
            return
        answer = {"code": code, "state": params.get("state", "")}
        if self.server.authority.consent_page:
            self._consent(params, answer)
            return
        self._redirect(params["redirect_uri"], answer)

    def _consent(self, params: dict[str, str], answer: dict[str, str]) -> None:
        """A consent page (as Google's and Microsoft's): Allow or Deny, then the redirect."""
        ticket = secrets.token_urlsafe(16)
        with self.server.lock:
            self.server.tickets[ticket] = (params["redirect_uri"], answer)
        user = html.escape(params.get("login_hint", ""))
        page = (
            "<!doctype html><title>Sign in - test provider</title>"
            f"<h1>Allow Mailroom to read and send mail as {user}?</h1>"
            f'<a id="allow" href="/authorize/decide?ticket={ticket}&amp;allow=1">Allow</a> '
            f'<a id="deny" href="/authorize/decide?ticket={ticket}&amp;allow=0">Deny</a>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def _decide(self, params: dict[str, str]) -> None:
        with self.server.lock:
            found = self.server.tickets.pop(params.get("ticket", ""), None)
        if found is None:
            self._json(400, {"error": "invalid_request", "error_description": "unknown ticket"})
            return
        target, answer = found
        if params.get("allow") != "1":
            answer = {"error": "access_denied", "state": answer["state"]}
        self._redirect(target, answer)

    def _redirect(self, target: str, answer: dict[str, str]) -> None:
        query = urllib.parse.urlencode(answer)
        self.send_response(302)
        self.send_header("Location", target + ("&" if "?" in target else "?") + query)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/token":
                self._json(200, self._token(form))
            elif path == "/introspect":
                self._json(200, self.server.authority.introspect(form.get("token", "")))
            else:
                self._json(404, {"error": "not_found"})
        except OAuthError as exc:
            self._json(exc.status, {"error": exc.error, "error_description": exc.description})

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        authority = self.server.authority
        authority.check_client(*self._client_credentials(form))
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            pair = authority.exchange_code(
                form.get("code", ""),
                redirect_uri=form.get("redirect_uri", ""),
                verifier=form.get("code_verifier", ""),
            )
        elif grant_type == "refresh_token":
            pair = authority.refresh(form.get("refresh_token", ""))
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
        return pair.as_json()

    def _client_credentials(self, form: dict[str, str]) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode("utf-8")
            client_id, _, secret = decoded.partition(":")
            unquote = urllib.parse.unquote_plus  # RFC 6749 §2.3.1: form-encoded first
            return unquote(client_id), unquote(secret)
        return form.get("client_id", ""), form.get("client_secret", "")

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the default writes every request (tokens in /authorize URLs) to stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, authority: TokenAuthority) -> None:
        super().__init__((HOST, 0), _Handler)
        self.authority = authority
        self.lock = threading.Lock()
        self.tickets: dict[str, tuple[str, dict[str, str]]] = {}


class OAuthProvider:
    """The local OAuth 2.0 provider: a `TokenAuthority` served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        client_id: str = "mailroom-test-client",
        client_secret: str | None = None,
        redirect_uris: tuple[str, ...] = (),
        access_lifetime: float = 5.0,
    ) -> None:
        self.authority = TokenAuthority(
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(18),
            redirect_uris=redirect_uris,
            access_lifetime=access_lifetime,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def client_id(self) -> str:
        """The one registered client's id."""
        return self.authority.client_id

    @property
    def client_secret(self) -> str:
        """The one registered client's secret."""
        return self.authority.client_secret

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT of the running server."""
        if self._server is None:
            raise RuntimeError("the OAuth provider is not started")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint."""
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.base_url + "/token"

    @property
    def introspection_url(self) -> str:
        """The RFC 7662 introspection endpoint (POST)."""
        return self.base_url + "/introspect"

    def start(self) -> None:
        """Listen on a free loopback port and serve in a daemon thread."""
        if self._server is not None:
            return
        self._server = _Server(self.authority)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth-provider", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OAuthProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def issue(self, user: str, *, scope: str = "") -> TokenPair:
        """A token pair for `user` without the browser step."""
        return self.authority.issue(user, scope=scope)

    def revoke_user(self, user: str) -> None:
        """Kill every token of `user`: the next refresh answers invalid_grant."""
        self.authority.revoke_user(user)

    def advance(self, seconds: float) -> None:
        """Age every token by `seconds` (access tokens expire without waiting)."""
        self.authority.advance(seconds)

    def introspect(self, token: str) -> dict[str, Any]:
        """Introspect over HTTP, as Dovecot and the SMTP test server do."""
        return introspect_at(self.introspection_url, token)


def introspect_at(url: str, token: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """POST `token` to the RFC 7662 endpoint `url`; the JSON answer."""
    import urllib.request

    body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer
