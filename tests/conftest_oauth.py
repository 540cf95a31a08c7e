"""Pytest plugin: the local OAuth 2.0 provider, and a Dovecot and an SMTP server that take its
tokens. Opt-in: only tests that ask for these fixtures start them; the default `dovecot`
and `smtp_server` fixtures stay password-only and untouched.

- `oauth_provider` (session): a started `OAuthProvider` (mailroom_testing/oauth_provider.py),
  access tokens living 5 s (tests age them with `advance`, never by waiting).
- `oauth_dovecot` (session): a second private Dovecot whose oauth2 passdb checks XOAUTH2
  and OAUTHBEARER tokens at the provider's introspection endpoint (passwords work too).
- `oauth_user` (function): a new user of `oauth_dovecot` (an address, as Google and
  Microsoft use), with an empty mailbox.
- `oauth_smtp_server` (session) / `oauth_smtp` (function, emptied): the aiosmtpd test
  server with XOAUTH2 and OAUTHBEARER checked at the provider.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom_testing.dovecot import DOVECOT_BIN, DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider
from mailroom_testing.smtp import SmtpTestServer


@pytest.fixture(scope="session")
def oauth_provider() -> Iterator[OAuthProvider]:
    provider = OAuthProvider(access_lifetime=5.0)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_provider: OAuthProvider) -> Iterator[DovecotServer]:
    if not Path(DOVECOT_BIN).exists():
        pytest.skip(f"{DOVECOT_BIN} is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    root = Path(tempfile.mkdtemp(prefix="mailroom-oauth-dovecot-"))
    server = DovecotServer(root, oauth_introspection_url=oauth_provider.introspection_url)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        problems = server.problems()
        shutil.rmtree(root, ignore_errors=True)
    if problems:
        warnings.warn("Dovecot (OAuth) logged:\n" + "\n".join(problems[:20]), stacklevel=1)


@pytest.fixture
def oauth_user(oauth_dovecot: DovecotServer) -> str:
    username = f"user-{secrets.token_hex(6)}@acme.example"
    oauth_dovecot.add_user(username, secrets.token_urlsafe(16))  # its mailbox; never used
    return username


@pytest.fixture(scope="session")
def oauth_smtp_server(oauth_provider: OAuthProvider) -> Iterator[SmtpTestServer]:
    root = Path(tempfile.mkdtemp(prefix="mailroom-oauth-smtp-"))
    server = SmtpTestServer(root, introspection_url=oauth_provider.introspection_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def oauth_smtp(oauth_smtp_server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    oauth_smtp_server.reset()
    yield oauth_smtp_server
    oauth_smtp_server.reset()
