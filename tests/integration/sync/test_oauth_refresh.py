"""The one refresh policy (mailboxes/tokens.py) against the local OAuth provider and
Dovecot's oauth2 passdb: refresh before expiry, refresh once on a refused token, the
rotated refresh token stored at once, invalid_grant as oauth_revoked (never an auth
failure, not retried by the next sync), fetch workers handed a fresh token."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Mailbox
from mailroom.errors import OAuthRevoked
from mailroom.mailboxes.oauth import Grant, load_grant, save_grant, set_client
from mailroom.mailboxes.store import add_mailbox, incoming_settings
from mailroom.mailboxes.tokens import connect_with_token, fresh_reopen, grant_of
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider


def oauth_mailbox(
    app: App, provider: OAuthProvider, dovecot: DovecotServer, user: str, *, expires_in: float
) -> int:
    """A mailbox of `user` on the OAuth Dovecot with a fresh grant (access token said to
    live `expires_in` seconds, whatever the provider thinks)."""
    pair = provider.issue(user)
    with transaction(app.sessions) as session:
        set_client(
            session,
            app.secrets,
            provider="microsoft",
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            authorize_url=provider.authorize_url,
            token_url=provider.token_url,
        )
        acme = session.scalar(select(Company)) or add_company(
            session, name="Acme", domains=["acme.example"]
        )
        owner = add_user(session, company=acme, email=user, name=user)
        box = add_mailbox(
            session,
            app.secrets,
            user=owner,
            host=dovecot.host,
            port=dovecot.imaps_port,
            password="",
            allow_self_signed=True,
            bearer=True,
        )
        grant = Grant(
            provider="microsoft",
            refresh_token=pair.refresh_token,
            access_token=pair.access_token,
            access_expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )
        save_grant(session, app.secrets, mailbox=box, grant=grant)
        return box.id


def settings_of(app: App, mailbox_id: int) -> ServerSettings:
    with app.sessions() as session:
        box = session.get(Mailbox, mailbox_id)
        assert box is not None
        return incoming_settings(box, app.secrets)


def connect(settings: ServerSettings) -> ImapSource:
    return ImapSource.connect(settings)


def test_a_token_about_to_expire_is_refreshed_and_the_rotated_refresh_token_stored(
    sqlite_app: App, oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=30)
    before = grant_of(sqlite_app, box)
    assert before is not None
    with connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect) as source:
        assert source.list_folders()
    after = grant_of(sqlite_app, box)
    assert after is not None and after.refresh_token != before.refresh_token
    assert after.access_token != before.access_token
    assert oauth_provider.introspect(after.access_token or "")["active"] is True
    # the old refresh token died at the provider: only the stored one keeps the mailbox alive
    oauth_provider.advance(60)
    with connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect) as source:
        assert source.list_folders()


def test_a_token_the_server_refuses_is_refreshed_once_and_the_login_retried(
    sqlite_app: App, oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=3600)
    oauth_provider.advance(60)  # the provider says it expired; the stored expiry does not
    spent = oauth_provider.authority.refreshes
    with connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect) as source:
        assert source.list_folders()
    assert oauth_provider.authority.refreshes == spent + 1


def test_a_fresh_token_is_used_as_is(
    sqlite_app: App, oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=3600)
    spent = oauth_provider.authority.refreshes
    with connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect):
        pass
    assert oauth_provider.authority.refreshes == spent


def test_fetch_workers_are_handed_a_token_fresh_right_now(
    sqlite_app: App, oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=3600)
    stale = replace(settings_of(sqlite_app, box), access_token="old-token", password="")
    with transaction(sqlite_app.sessions) as session:  # the stored token nears its end
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        grant = load_grant(session, sqlite_app.secrets, mailbox=mailbox)
        assert grant is not None
        near = replace(grant, access_expires_at=datetime.now(UTC) + timedelta(seconds=10))
        save_grant(session, sqlite_app.secrets, mailbox=mailbox, grant=near)
    reopen = fresh_reopen(sqlite_app, box, functools.partial(ImapSource.connect, stale))
    assert isinstance(reopen, functools.partial)
    handed = reopen.args[0]
    assert handed.access_token not in ("old-token", grant.access_token)
    with reopen() as source:
        assert source.list_folders()


def test_a_revoked_grant_is_oauth_revoked_never_an_auth_failure_and_not_retried(
    sqlite_app: App, oauth_provider: OAuthProvider, oauth_dovecot: DovecotServer, oauth_user: str
) -> None:
    oauth_dovecot.append(oauth_user, "INBOX", build_message(subject="One"))
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=30)
    assert sync_mailbox(sqlite_app, box).error is None
    oauth_provider.revoke_user(oauth_user)
    with pytest.raises(OAuthRevoked):
        connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect)
    report = sync_mailbox(sqlite_app, box)
    assert isinstance(report.error, OAuthRevoked)
    with sqlite_app.sessions() as session:
        row = session.get(Mailbox, box)
        assert row is not None
        assert row.error_kind == "oauth_revoked" and row.auth_failure_count == 0
        assert row.error_hint is not None and f"mailroom mailbox reconnect {box} " in row.error_hint
        assert row.next_attempt_at is not None
        wait = row.next_attempt_at.replace(tzinfo=UTC) - datetime.now(UTC)
        assert wait > timedelta(hours=12)
    spent = oauth_provider.authority.refreshes
    for _ in range(3):
        assert sync_mailbox(sqlite_app, box).skipped == "sign-in"
    assert oauth_provider.authority.refreshes == spent
    with sqlite_app.sessions() as session:
        row = session.get(Mailbox, box)
        assert row is not None and row.auth_failure_count == 0


def test_a_password_mailbox_passes_through_untouched(
    sqlite_app: App, oauth_provider: OAuthProvider
) -> None:
    settings = ServerSettings(host="h", port=1, username="u", password="p", security=Security.SSL)
    with transaction(sqlite_app.sessions) as session:
        acme = add_company(session, name="Acme", domains=["acme.example"])
        owner = add_user(session, company=acme, email="ann@acme.example", name="Ann")
        box = add_mailbox(session, sqlite_app.secrets, user=owner, host="h", port=1, password="p")
        box_id = box.id
    assert connect_with_token(sqlite_app, box_id, settings, lambda s: s) is settings
