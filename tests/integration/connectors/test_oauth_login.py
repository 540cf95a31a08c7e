"""OAuth 2.0 bearer-token logins (SASL XOAUTH2 and OAUTHBEARER) against real servers: the
test Dovecot's oauth2 passdb (IMAP, POP3) and the aiosmtpd server (SMTP), both checking
each token at the local OAuth provider's introspection endpoint (tests/conftest_oauth.py).

Tokens expire by the provider's clock (`advance`), never by waiting.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import secrets
import urllib.parse
from dataclasses import replace
from typing import Any

import pytest

from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.connectors.smtp import SmtpSender
from mailroom.errors import AuthenticationError, MailServerError, TokenRejected
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider, s256_challenge
from mailroom_testing.smtp import OAuthRecordingHandler, SmtpTestServer

MESSAGE = b"From: a@acme.example\r\nTo: b@client.example\r\nSubject: hi\r\n\r\nHello.\r\n"


def imap_settings(dovecot: DovecotServer, user: str, token: str, **kw: Any) -> ServerSettings:
    return ServerSettings(
        host=dovecot.host, port=dovecot.imaps_port, username=user, access_token=token, **kw
    )


def pop3_settings(dovecot: DovecotServer, user: str, token: str, **kw: Any) -> ServerSettings:
    return ServerSettings(
        host=dovecot.host, port=dovecot.pop3s_port, username=user, access_token=token, **kw
    )


def smtp_settings(smtp: SmtpTestServer, user: str, token: str, **kw: Any) -> ServerSettings:
    return ServerSettings(
        host="127.0.0.1",
        port=smtp.starttls_port,
        username=user,
        access_token=token,
        security=Security.STARTTLS,
        **kw,
    )


def login_methods(dovecot: DovecotServer, user: str) -> list[str]:
    """The SASL methods Dovecot logged successful logins of `user` with (less PLAIN: the
    seeding helper's master-user logins)."""
    methods = [
        line.split("method=")[1].split(",")[0]
        for line in dovecot.log().splitlines()
        if "Login: user=<" + user + ">" in line and "method=" in line
    ]
    return [method for method in methods if method != "PLAIN"]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_imap_bearer_login_lists_the_folders(
    oauth_dovecot: DovecotServer, oauth_provider: OAuthProvider, oauth_user: str, mechanism: str
) -> None:
    token = oauth_provider.issue(oauth_user).access_token
    settings = imap_settings(oauth_dovecot, oauth_user, token, oauth_mechanism=mechanism)
    with ImapSource.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as source:
        names = {folder.name for folder in source.list_folders()}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= names
    assert login_methods(oauth_dovecot, oauth_user) == [mechanism]


def test_imap_picks_xoauth2_when_the_server_offers_both(
    oauth_dovecot: DovecotServer, oauth_provider: OAuthProvider, oauth_user: str
) -> None:
    token = oauth_provider.issue(oauth_user).access_token
    settings = imap_settings(oauth_dovecot, oauth_user, token)
    with ImapSource.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as source:
        assert source.folder_status("INBOX").messages == 0
    assert login_methods(oauth_dovecot, oauth_user) == ["XOAUTH2"]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_pop3_bearer_login_lists_the_maildrop(
    oauth_dovecot: DovecotServer, oauth_provider: OAuthProvider, oauth_user: str, mechanism: str
) -> None:
    oauth_dovecot.append(oauth_user, "INBOX", MESSAGE)
    token = oauth_provider.issue(oauth_user).access_token
    settings = pop3_settings(oauth_dovecot, oauth_user, token, oauth_mechanism=mechanism)
    with Pop3Mailbox.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as box:
        [(number, _uidl, _size)] = box.listing()
        assert b"Subject: hi" in box.retrieve(number)
    assert login_methods(oauth_dovecot, oauth_user) == [mechanism]


def test_pop3_without_a_mechanism_asks_capa_and_uses_xoauth2(
    oauth_dovecot: DovecotServer, oauth_provider: OAuthProvider, oauth_user: str
) -> None:
    token = oauth_provider.issue(oauth_user).access_token
    settings = pop3_settings(oauth_dovecot, oauth_user, token)
    with Pop3Mailbox.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as box:
        assert box.listing() == []
    assert login_methods(oauth_dovecot, oauth_user) == ["XOAUTH2"]


@pytest.mark.parametrize("mechanism", [None, "OAUTHBEARER"])
def test_smtp_bearer_login_sends(
    oauth_smtp: SmtpTestServer, oauth_provider: OAuthProvider, mechanism: str | None
) -> None:
    user = f"sender-{secrets.token_hex(4)}@acme.example"
    token = oauth_provider.issue(user).access_token
    settings = smtp_settings(oauth_smtp, user, token, oauth_mechanism=mechanism)
    with SmtpSender.connect(settings, ssl_context=oauth_smtp.ssl_context()) as sender:
        sender.send(user, ["jo@client.example"], MESSAGE)
    assert isinstance(oauth_smtp.handler, OAuthRecordingHandler)
    assert oauth_smtp.handler.logins == [user]
    [got] = oauth_smtp.messages
    assert got.rcpt_tos == ["jo@client.example"]


# -- refused tokens ----------------------------------------------------------------------


def every_form(token: str, user: str) -> list[str]:
    forms = [token]
    for first in (f"user={user}\x01", f"n,a={user},\x01"):
        raw = f"{first}auth=Bearer {token}\x01\x01".encode()
        forms.append(base64.b64encode(raw).decode())
    return forms


def assert_token_absent(error: BaseException, token: str, user: str, log_text: str) -> None:
    assert isinstance(error, MailServerError)
    shown = " ".join([str(error), repr(error), error.hint or "", repr(error.__dict__), log_text])
    for form in every_form(token, user):
        assert form not in shown
        assert token[:12] not in shown


def connect_with(protocol: str, servers: dict[str, Any], settings: ServerSettings) -> None:
    if protocol == "IMAP":
        ImapSource.connect(settings, ssl_context=servers["dovecot"].ssl_context()).close()
    elif protocol == "POP3":
        Pop3Mailbox.connect(settings, ssl_context=servers["dovecot"].ssl_context()).close()
    else:
        SmtpSender.connect(settings, ssl_context=servers["smtp"].ssl_context()).close()


def settings_for(protocol: str, servers: dict[str, Any], user: str, token: str) -> ServerSettings:
    if protocol == "IMAP":
        return imap_settings(servers["dovecot"], user, token)
    if protocol == "POP3":
        return pop3_settings(servers["dovecot"], user, token)
    return smtp_settings(servers["smtp"], user, token)


@pytest.fixture
def servers(oauth_dovecot: DovecotServer, oauth_smtp: SmtpTestServer) -> dict[str, Any]:
    return {"dovecot": oauth_dovecot, "smtp": oauth_smtp}


@pytest.mark.parametrize("protocol", ["IMAP", "POP3", "SMTP"])
def test_an_expired_token_is_token_rejected_without_the_token_in_the_error(
    servers: dict[str, Any],
    oauth_provider: OAuthProvider,
    oauth_user: str,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = oauth_provider.issue(oauth_user).access_token
    oauth_provider.advance(oauth_provider.authority.access_lifetime + 1)
    settings = settings_for(protocol, servers, oauth_user, token)
    with caplog.at_level(logging.DEBUG), pytest.raises(TokenRejected) as caught:
        connect_with(protocol, servers, settings)
    assert caught.value.kind == "token-rejected" and not caught.value.user_fixable
    assert "access token" in str(caught.value)
    assert_token_absent(caught.value, token, oauth_user, caplog.text)


@pytest.mark.parametrize("protocol", ["IMAP", "POP3", "SMTP"])
def test_a_revoked_users_token_is_refused_and_a_refresh_is_invalid_grant(
    servers: dict[str, Any], oauth_provider: OAuthProvider, oauth_user: str, protocol: str
) -> None:
    pair = oauth_provider.issue(oauth_user)
    oauth_provider.revoke_user(oauth_user)
    settings = settings_for(protocol, servers, oauth_user, pair.access_token)
    with pytest.raises(TokenRejected) as caught:
        connect_with(protocol, servers, settings)
    assert_token_absent(caught.value, pair.access_token, oauth_user, "")
    status, body = post_token(
        oauth_provider, grant_type="refresh_token", refresh=pair.refresh_token
    )
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("protocol", ["IMAP", "POP3", "SMTP"])
def test_after_token_rejected_one_refresh_and_retry_logs_in(
    servers: dict[str, Any], oauth_provider: OAuthProvider, oauth_user: str, protocol: str
) -> None:
    """The caller's contract: on TokenRejected refresh once (the refresh token rotates) and
    connect again with the new access token."""
    pair = oauth_provider.issue(oauth_user)
    oauth_provider.advance(oauth_provider.authority.access_lifetime + 1)
    settings = settings_for(protocol, servers, oauth_user, pair.access_token)
    with pytest.raises(TokenRejected):
        connect_with(protocol, servers, settings)
    status, body = post_token(
        oauth_provider, grant_type="refresh_token", refresh=pair.refresh_token
    )
    assert status == 200 and body["refresh_token"] != pair.refresh_token
    connect_with(protocol, servers, replace(settings, access_token=body["access_token"]))
    status, again = post_token(
        oauth_provider, grant_type="refresh_token", refresh=pair.refresh_token
    )
    assert (status, again["error"]) == (400, "invalid_grant")  # the rotated one is dead


def test_a_wrong_password_on_the_same_server_stays_an_authentication_error(
    oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    settings = ServerSettings(
        host=oauth_dovecot.host, port=oauth_dovecot.imaps_port, username=oauth_user, password="x"
    )
    with pytest.raises(AuthenticationError) as caught:
        ImapSource.connect(settings, ssl_context=oauth_dovecot.ssl_context())
    assert not isinstance(caught.value, TokenRejected)


# -- the provider's own endpoints, over HTTP -----------------------------------------------


def post_token(
    provider: OAuthProvider, *, grant_type: str, refresh: str = "", **form: str
) -> tuple[int, dict[str, Any]]:
    fields = {"grant_type": grant_type, **form}
    if refresh:
        fields["refresh_token"] = refresh
    credentials = f"{provider.client_id}:{provider.client_secret}".encode()
    url = urllib.parse.urlsplit(provider.token_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request(
            "POST",
            url.path,
            body=urllib.parse.urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            },
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_the_code_flow_with_pkce_yields_a_token_dovecot_accepts(
    oauth_dovecot: DovecotServer, oauth_provider: OAuthProvider, oauth_user: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    redirect = "http://127.0.0.1:9/callback"
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": oauth_provider.client_id,
            "redirect_uri": redirect,
            "scope": "https://mail.google.com/",
            "state": "s-123",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
            "login_hint": oauth_user,
        }
    )
    url = urllib.parse.urlsplit(oauth_provider.authorize_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    conn.request("GET", f"{url.path}?{query}")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 302
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.geturl().startswith(redirect + "?")
    params = dict(urllib.parse.parse_qsl(location.query))
    assert params["state"] == "s-123"
    exchange = {"code": params["code"], "redirect_uri": redirect, "code_verifier": verifier}
    status, body = post_token(oauth_provider, grant_type="authorization_code", **exchange)
    assert status == 200 and body["token_type"] == "Bearer"
    assert oauth_provider.introspect(body["access_token"])["username"] == oauth_user
    settings = imap_settings(oauth_dovecot, oauth_user, body["access_token"])
    with ImapSource.connect(settings, ssl_context=oauth_dovecot.ssl_context()) as source:
        assert source.list_folders()
    status, again = post_token(oauth_provider, grant_type="authorization_code", **exchange)
    assert (status, again["error"]) == (400, "invalid_grant")  # a code is spent once
