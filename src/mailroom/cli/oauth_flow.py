"""The CLI side of an OAuth sign-in: a one-shot loopback listener for the provider's
redirect (RFC 8252 §7.3), the URL on stderr, optionally a browser.

`sign_in` binds 127.0.0.1 on a free port first (the redirect URI it sends names that
port), prints `Open this address to sign in: URL` on stderr, waits up to five minutes
for the redirect, answers the browser with a short page and hands the redirect's URL to
the service that checks its state and exchanges the code. Nothing here prints a token
or the code.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
import webbrowser
from typing import Any

from mailroom.app import App
from mailroom.errors import UserError
from mailroom.services.mailbox_setup import OAuthSignIn
from mailroom.services.oauth_signin import SIGN_IN_TIMEOUT, finish_sign_in, start_sign_in

CALLBACK_PATH = "/oauth/callback"
DONE_PAGE = (
    b"<!doctype html><title>Mailroom</title><p>Signed in. You can close this window and "
    b"return to Mailroom.</p>"
)


class SignInTimedOut(UserError):
    """Nobody completed the sign-in in time."""

    kind = "sign-in-timeout"


class _Listener(http.server.HTTPServer):
    callback: str | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Listener

    def do_GET(self) -> None:
        if not self.path.startswith(CALLBACK_PATH):
            self.send_error(404)
            return
        self.server.callback = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(DONE_PAGE)))
        self.end_headers()
        self.wfile.write(DONE_PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code
        return


def _wait(listener: _Listener, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    listener.timeout = 1.0
    while listener.callback is None:
        if time.monotonic() > deadline:
            raise SignInTimedOut(
                f"Nobody signed in within {int(timeout // 60)} minutes.",
                hint="Run the command again and open the address it prints.",
            )
        listener.handle_request()
    return listener.callback


def sign_in(
    app: App,
    *,
    provider: str,
    login_hint: str,
    open_browser: bool,
    timeout: float = SIGN_IN_TIMEOUT,
) -> OAuthSignIn:
    """Run the browser sign-in through a loopback listener; the provider's tokens."""
    with _Listener(("127.0.0.1", 0), _Handler) as listener:
        redirect_uri = f"http://127.0.0.1:{listener.server_port}{CALLBACK_PATH}"
        pending = start_sign_in(
            app, provider=provider, login_hint=login_hint, redirect_uri=redirect_uri
        )
        print(f"Open this address to sign in: {pending.url}", file=sys.stderr, flush=True)
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(pending.url,), daemon=True).start()
        callback = _wait(listener, timeout)
    return finish_sign_in(app, provider=provider, pending=pending, callback_url=callback)
