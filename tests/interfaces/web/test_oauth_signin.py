"""The dashboard's OAuth sign-in through the web app, against the local OAuth provider and
Dovecot's oauth2 passdb: the callback's state is bound to the browser's session (a
missing, wrong, foreign or reused state is refused and nothing is stored), a provider's
refusal is a clear message, an admin's request is completed by its user, and no token
reaches a page."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MessageCopy, User
from mailroom.db.oauth_models import MailboxOAuth, OAuthPending, OAuthRequest
from mailroom.errors import OAuthRevoked
from mailroom.outbox.delivery import process_due
from mailroom.outbox.service import SendRequest, queue_message
from mailroom.services.oauth import register_client
from mailroom.sync.health import record_failure
from mailroom.web.app import create_web_app
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider
from mailroom_testing.smtp import HOST as SMTP_HOST
from mailroom_testing.smtp import SmtpTestServer
from tests.conftest_web import Tenant, csrf_of, seed_tenant, sign_in
from tests.helpers.mailbox_state import wait_for_syncs
from tests.helpers.tx_guard import guarding


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def provider_redirect(url: str) -> str:
    """Visit the provider's authorization URL like a browser; the path and query it
    redirects to (the dashboard's callback)."""
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as found:
        opener.open(url, timeout=30)
    assert found.value.code == 302, found.value.read()
    location = found.value.headers["Location"]
    parts = urllib.parse.urlsplit(location)
    assert parts.path == "/oauth/callback"
    return f"{parts.path}?{parts.query}"


@dataclass
class Setup:
    app: App
    tenant: Tenant
    provider: OAuthProvider
    dovecot: DovecotServer
    user: str


@pytest.fixture
def setup(
    sqlite_app: App,
    fast_hashing: None,
    oauth_provider: OAuthProvider,
    oauth_dovecot: DovecotServer,
    oauth_user: str,
) -> Setup:
    register_client(
        sqlite_app,
        provider="google",
        client_id=oauth_provider.client_id,
        client_secret=oauth_provider.client_secret,
        authorize_url=oauth_provider.authorize_url,
        token_url=oauth_provider.token_url,
    )
    tenant = seed_tenant(sqlite_app, "Alpha")
    return Setup(sqlite_app, tenant, oauth_provider, oauth_dovecot, oauth_user)


@pytest.fixture
def client(setup: Setup) -> Iterator[TestClient]:
    with TestClient(create_web_app(setup.app)) as web:
        yield web


def origin(web: TestClient) -> dict[str, str]:
    return {"Origin": str(web.base_url).rstrip("/")}


def start(web: TestClient, setup: Setup, csrf: str, **form: str) -> str:
    """Press "Sign in with Google" (servers: the test Dovecot); the provider's URL."""
    data = {
        "csrf_token": csrf,
        "provider": "google",
        "address": setup.user,
        "host": setup.dovecot.host,
        "port": str(setup.dovecot.imaps_port),
        "security": "ssl",
        "allow_self_signed": "true",
        "backfill": "30",
        **form,
    }
    answer = web.post("/oauth/start", data=data, headers=origin(web), follow_redirects=False)
    assert answer.status_code == 303, answer.text
    url = answer.headers["location"]
    assert url.startswith(setup.provider.authorize_url)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == setup.app.settings.public_url + "/oauth/callback"
    return url


def live_tokens(provider: OAuthProvider) -> set[str]:
    return set(provider.authority._access) | set(provider.authority._refresh)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def files_holding(app: App, needle: bytes) -> list[str]:
    """Files under the data dir (database, -wal, -shm, logs, blobs) whose bytes hold it."""
    return [
        str(f) for f in app.settings.data_dir.rglob("*") if f.is_file() and needle in f.read_bytes()
    ]


def owner_of(session: Session, box: Mailbox) -> str:
    owner = session.get(User, box.user_id)
    assert owner is not None
    return owner.email


def mailbox_of(app: App, username: str) -> int:
    with app.sessions() as session:
        return session.scalars(select(Mailbox.id).where(Mailbox.username == username)).one()


def counts(app: App) -> tuple[int, int, int]:
    with app.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Mailbox)) or 0,
            session.scalar(select(func.count()).select_from(MailboxOAuth)) or 0,
            session.scalar(select(func.count()).select_from(OAuthPending)) or 0,
        )


def test_sign_in_with_google_connects_the_mailbox_and_a_replayed_callback_is_refused(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    assert "Sign in with Google" in client.get("/mailboxes").text
    callback = provider_redirect(start(client, setup, csrf))
    done = client.get(callback, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/mailboxes?notice=oauth-connected")
    with setup.app.sessions() as session:
        box = session.scalars(select(Mailbox).where(Mailbox.username == setup.user)).one()
        assert owner_of(session, box) == setup.tenant.member
        assert box.since_date is not None  # the backfill window chosen on the form
    before = counts(setup.app)
    assert before[2] == 0  # the pending sign-in was used up
    tokens = live_tokens(setup.provider)
    pages = [client.get(p).content for p in ("/mailboxes", f"/mailboxes/{box.id}/errors")]
    api = client.get("/api/v1/mailboxes", headers=bearer(setup.tenant.member_token))
    assert api.status_code == 200 and setup.user.encode() in api.content
    pages.append(api.content)
    for token in tokens:
        assert all(token.encode() not in page for page in pages)
        assert not files_holding(setup.app, token.encode())

    again = client.get(callback, follow_redirects=False)
    assert again.status_code == 403
    assert "already used or has expired" in again.text
    assert counts(setup.app) == before


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda q: {k: v for k, v in q.items() if k != "state"}, id="missing"),
        pytest.param(lambda q: {**q, "state": q["state"][:-2] + "xx"}, id="wrong"),
    ],
)
def test_a_callback_without_this_sessions_state_is_refused_and_stores_nothing(
    setup: Setup, client: TestClient, mangle: object
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    callback = provider_redirect(start(client, setup, csrf))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    forged = "/oauth/callback?" + urllib.parse.urlencode(mangle(query))  # type: ignore[operator]
    before = counts(setup.app)
    answer = client.get(forged, follow_redirects=False)
    assert answer.status_code == 403
    assert "Nothing was saved" in answer.text
    assert counts(setup.app) == before  # the real pending sign-in is still there, unused


def test_another_sessions_callback_is_refused_and_the_owner_can_still_finish(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    callback = provider_redirect(start(client, setup, csrf))
    with TestClient(create_web_app(setup.app)) as attacker_web:
        sign_in(attacker_web, setup.tenant.admin)  # the same company, another session
        answer = attacker_web.get(callback, follow_redirects=False)
        assert answer.status_code == 403
    assert counts(setup.app)[0:2] == (1, 0)  # only the seeded password mailbox
    done = client.get(callback, follow_redirects=False)
    assert done.status_code == 303


def test_a_provider_refusal_is_a_clear_message_and_stores_nothing(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    url = start(client, setup, csrf)
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
    refused = "/oauth/callback?" + urllib.parse.urlencode(
        {"error": "access_denied", "error_description": "<b>user said no</b>", "state": state}
    )
    answer = client.get(refused, follow_redirects=False)
    assert answer.status_code == 422
    assert "The sign-in at Google was cancelled or access was not allowed." in answer.text
    assert "user said no" not in answer.text  # the provider's words are not echoed
    assert counts(setup.app) == (1, 0, 0)


def test_a_code_already_spent_at_the_provider_is_a_clear_message(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    callback = provider_redirect(start(client, setup, csrf))
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    setup.provider.authority._codes.pop(code)  # spent elsewhere: the exchange is invalid_grant
    answer = client.get(callback, follow_redirects=False)
    assert answer.status_code == 422
    assert "its code expired or was already used" in answer.text
    assert counts(setup.app) == (1, 0, 0)


def test_an_admins_request_is_completed_by_the_user_and_the_mailbox_is_theirs(
    setup: Setup, client: TestClient
) -> None:
    admin_csrf = sign_in(client, setup.tenant.admin)
    asked = client.post(
        "/oauth/requests",
        data={"csrf_token": admin_csrf, "user_email": setup.tenant.member, "provider": "google"},
        headers=origin(client),
        follow_redirects=False,
    )
    assert asked.status_code == 303, asked.text
    with TestClient(create_web_app(setup.app)) as member_web:
        sign_in(member_web, setup.tenant.member)
        page = member_web.get("/mailboxes").text
        assert f"{setup.tenant.admin} asked you to connect your Google mailbox" in page
        with setup.app.sessions() as session:
            request_id = session.scalars(select(OAuthRequest.id)).one()
        url = start(member_web, setup, csrf_of(page), provider="", request_id=str(request_id))
        done = member_web.get(provider_redirect(url), follow_redirects=False)
        assert done.status_code == 303, done.text
        assert "asked you to connect" not in member_web.get("/mailboxes").text
    with setup.app.sessions() as session:
        box = session.scalars(select(Mailbox).where(Mailbox.username == setup.user)).one()
        request = session.get(OAuthRequest, request_id)
        assert request is not None and request.completed_at is not None
        assert request.mailbox_id == box.id
        assert owner_of(session, box) == setup.tenant.member
    # a member may not ask
    with TestClient(create_web_app(setup.app)) as member_web:
        member_csrf = sign_in(member_web, setup.tenant.member)
        refused = member_web.post(
            "/oauth/requests",
            data={
                "csrf_token": member_csrf,
                "user_email": setup.tenant.admin,
                "provider": "google",
            },
            headers=origin(member_web),
            follow_redirects=False,
        )
        assert refused.status_code == 422
        assert "This page is for admins." in refused.text


def test_an_expired_pending_sign_in_is_refused_and_stores_nothing(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    callback = provider_redirect(start(client, setup, csrf))
    with transaction(setup.app.sessions) as session:
        pending = session.scalars(select(OAuthPending)).one()
        pending.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    answer = client.get(callback, follow_redirects=False)
    assert answer.status_code == 403
    assert counts(setup.app) == (1, 0, 0)


def test_the_dashboard_sign_in_and_reconnect_hold_no_transaction_while_talking(
    setup: Setup, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with guarding(monkeypatch) as guard:
        csrf = sign_in(client, setup.tenant.member)
        done = client.get(provider_redirect(start(client, setup, csrf)), follow_redirects=False)
        assert done.status_code == 303, done.text
        box = mailbox_of(setup.app, setup.user)
        wait_for_syncs(box)
        url = start(client, setup, csrf, provider="", mailbox_id=str(box))  # Reconnect
        again = client.get(provider_redirect(url), follow_redirects=False)
        assert again.headers["location"].startswith("/mailboxes?notice=oauth-reconnected")
        assert mailbox_of(setup.app, setup.user) == box
        wait_for_syncs(box)
    guard.assert_clean()


def test_an_admin_sees_a_revoked_mailbox_and_asks_its_owner_who_reconnects_it(
    setup: Setup, client: TestClient
) -> None:
    csrf = sign_in(client, setup.tenant.member)
    done = client.get(provider_redirect(start(client, setup, csrf)), follow_redirects=False)
    assert done.status_code == 303
    box = mailbox_of(setup.app, setup.user)
    wait_for_syncs(box)
    with transaction(setup.app.sessions) as session:  # what a sync records on invalid_grant
        row = session.get(Mailbox, box)
        assert row is not None
        record_failure(session, row, OAuthRevoked("invalid_grant", hint="Sign in again."))
    assert "Sign-in expired or revoked" in client.get("/mailboxes").text

    with TestClient(create_web_app(setup.app)) as admin_web:
        admin_csrf = sign_in(admin_web, setup.tenant.admin)
        page = admin_web.get("/mailboxes").text
        assert f"{setup.user} can no longer sync" in page
        assert f"Ask {setup.tenant.member} to sign in again" in page
        forbidden = admin_web.post(  # only the owner signs their mailbox in
            "/oauth/start",
            data={"csrf_token": admin_csrf, "mailbox_id": str(box)},
            headers=origin(admin_web),
        )
        assert forbidden.status_code == 422 and "Only the owner" in forbidden.text
        asked = admin_web.post(
            "/oauth/requests",
            data={
                "csrf_token": admin_csrf,
                "user_email": setup.tenant.member,
                "provider": "google",
                "mailbox_id": str(box),
            },
            headers=origin(admin_web),
            follow_redirects=False,
        )
        assert asked.status_code == 303, asked.text

    page = client.get("/mailboxes").text
    assert "asked you to sign in again" in page
    request_id = re.search(r'name="request_id" value="(\d+)"', page)
    assert request_id is not None
    url = start(client, setup, csrf, provider="", request_id=request_id.group(1))
    again = client.get(provider_redirect(url), follow_redirects=False)
    assert again.headers["location"].startswith("/mailboxes?notice=oauth-reconnected")
    assert mailbox_of(setup.app, setup.user) == box
    page = client.get("/mailboxes").text
    assert "Sign-in expired or revoked" not in page and "asked you to" not in page
    wait_for_syncs(box)


def test_a_pop3_mailbox_signed_in_from_the_dashboard_syncs_and_sends_with_the_same_token(
    setup: Setup, client: TestClient, oauth_smtp: SmtpTestServer
) -> None:
    for n in range(2):
        setup.dovecot.append(setup.user, "INBOX", build_message(subject=f"POP {n}"))
    csrf = sign_in(client, setup.tenant.member)
    url = start(
        client,
        setup,
        csrf,
        protocol="pop3",
        port=str(setup.dovecot.pop3s_port),
        smtp_host=SMTP_HOST,
        smtp_port=str(oauth_smtp.starttls_port),
        smtp_security="starttls",
    )
    done = client.get(provider_redirect(url), follow_redirects=False)
    assert done.status_code == 303, done.text
    assert setup.user in oauth_smtp.handler.logins  # SMTP logged in with XOAUTH2 first
    box = mailbox_of(setup.app, setup.user)
    wait_for_syncs(box)
    with setup.app.sessions() as session:
        row = session.get(Mailbox, box)
        assert row is not None and row.protocol == "pop3" and row.status == "ok", row.last_error
        copies = select(func.count()).select_from(MessageCopy)
        assert session.scalar(copies.where(MessageCopy.mailbox_id == box)) == 2
    with transaction(setup.app.sessions) as session:
        queue_message(
            session,
            request=SendRequest(mailbox_id=box, to=["jo@client.example"], subject="Hi", text="B"),
        )
    assert [r.status for r in process_due(setup.app)] == ["sent"]
    assert len(oauth_smtp.messages) == 1


def test_a_browser_keeps_at_most_five_sign_ins_under_way(setup: Setup, client: TestClient) -> None:
    csrf = sign_in(client, setup.tenant.member)
    first = provider_redirect(start(client, setup, csrf))
    for _ in range(5):
        start(client, setup, csrf)
    assert counts(setup.app)[2] == 5
    assert client.get(first, follow_redirects=False).status_code == 403  # the oldest went
