"""OAuth client registry and mailbox grants (mailboxes/oauth.py): URLs https-only except
loopback, secrets encrypted and bound to their own row and purpose."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.db.oauth_models import MailboxOAuth, OAuthClient
from mailroom.errors import BadInput, ConfigError, NotFound
from mailroom.mailboxes.oauth import (
    Grant,
    check_endpoint_url,
    client_config,
    load_grant,
    save_grant,
    set_client,
)
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.secrets import mailbox_context

SECRET = "client-secret-do-not-show"


@pytest.mark.parametrize(
    "url",
    [
        "https://login.microsoftonline.us/tenant/oauth2/v2.0/token",
        "http://127.0.0.1:8080/token",
        "http://[::1]:9000/authorize",
    ],
)
def test_https_or_loopback_http_endpoints_are_accepted(url: str) -> None:
    assert check_endpoint_url(url, "token URL") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://login.example/token",
        "http://localhost/token",
        "http://127.0.0.1.evil.example/token",
        "ftp://127.0.0.1/token",
        "https://user:pw@login.example/token",
        "/token",
    ],
)
def test_other_endpoints_are_refused(url: str) -> None:
    with pytest.raises(BadInput):
        check_endpoint_url(url, "token URL")


def test_a_client_secret_is_stored_encrypted_and_replaced_in_place(sqlite_app: App) -> None:
    with transaction(sqlite_app.sessions) as session:
        set_client(
            session, sqlite_app.secrets, provider="google", client_id="id-1", client_secret=SECRET
        )
        set_client(
            session,
            sqlite_app.secrets,
            provider="Google",
            client_id="id-2",
            client_secret=SECRET + "2",
            token_url="http://127.0.0.1:1/token",
        )
    with sqlite_app.sessions() as session:
        [row] = session.scalars(select(OAuthClient)).all()
        assert SECRET.encode() not in row.secret
        config = client_config(session, sqlite_app.secrets, "google")
    assert (config.client_id, config.client_secret) == ("id-2", SECRET + "2")
    assert config.token_url == "http://127.0.0.1:1/token"
    assert config.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert SECRET not in repr(config)


def test_an_unknown_provider_or_missing_client_is_the_users_to_fix(sqlite_app: App) -> None:
    with transaction(sqlite_app.sessions) as session:
        with pytest.raises(BadInput, match="yahoo") as bad:
            set_client(
                session, sqlite_app.secrets, provider="yahoo", client_id="x", client_secret="y"
            )
        assert bad.value.hint == "Use google or microsoft."
        with pytest.raises(NotFound, match="Microsoft") as missing:
            client_config(session, sqlite_app.secrets, "microsoft")
        assert "mailroom oauth set microsoft" in (missing.value.hint or "")


def _mailbox(app: App, address: str) -> int:
    with transaction(app.sessions) as session:
        from mailroom.db.models import Company

        acme = session.scalar(select(Company)) or add_company(
            session, name="Acme", domains=["acme.example"]
        )
        owner = add_user(session, company=acme, email=address, name=address)
        box = add_mailbox(
            session,
            app.secrets,
            user=owner,
            host="imap.gmail.com",
            port=993,
            username=address,
            password="unused",
        )
        return box.id


def test_a_grant_round_trips_and_decrypts_in_no_other_mailbox(sqlite_app: App) -> None:
    ann, bob = _mailbox(sqlite_app, "ann@acme.example"), _mailbox(sqlite_app, "bob@acme.example")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    grant = Grant("microsoft", "refresh-1", "access-1", expires, "offline_access")
    with transaction(sqlite_app.sessions) as session:
        box = session.get(Mailbox, ann)
        assert box is not None
        save_grant(session, sqlite_app.secrets, mailbox=box, grant=grant)
    with sqlite_app.sessions() as session:
        box = session.get(Mailbox, ann)
        assert box is not None
        loaded = load_grant(session, sqlite_app.secrets, mailbox=box)
        row = session.scalar(select(MailboxOAuth))
        assert row is not None and b"refresh-1" not in row.refresh_secret
        with pytest.raises(ConfigError):  # another mailbox's context
            sqlite_app.secrets.decrypt(
                row.refresh_secret, context=mailbox_context(bob, "oauth-refresh")
            )
        with pytest.raises(ConfigError):  # the access token's purpose
            sqlite_app.secrets.decrypt(
                row.refresh_secret, context=mailbox_context(ann, "oauth-access")
            )
    assert loaded is not None
    assert (loaded.refresh_token, loaded.access_token, loaded.scope) == (
        "refresh-1",
        "access-1",
        "offline_access",
    )
    assert loaded.access_expires_at is not None
    assert "refresh-1" not in repr(loaded) and "access-1" not in repr(loaded)
