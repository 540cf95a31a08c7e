"""The record page's "Search the mailboxes on the server for older mail" against the real
Dovecot: mail older than the sync window is fetched by a thread (never in the request),
linked to the record, and the page says what was found; the API starts the same search."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import MessageLink, User
from mailroom.security.auth import create_api_token
from mailroom.security.passwords import hash_password
from mailroom.services.record_links import server_search_state
from mailroom.sync.engine import sync_mailbox
from mailroom.web.app import create_web_app
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_web import PASSWORD, sign_in
from tests.helpers.sync_support import connect_mailbox

ORIGIN = {"Origin": "http://testserver"}


def test_the_server_search_button_fetches_and_links_older_mail_in_the_background(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], fast_hashing: None
) -> None:
    login = imap_user[0]
    old = datetime.now(UTC) - timedelta(days=400)
    for n in range(2):
        data = build_message(
            sender="sue@client.example", to=f"{login}@acme.example", subject=f"Old {n}", minutes=n
        )
        dovecot.append(login, "INBOX", data, internaldate=old)
    since = (datetime.now(UTC) - timedelta(days=30)).date()
    box = connect_mailbox(sqlite_app, dovecot, imap_user, since=since, folders=("INBOX",))
    assert sync_mailbox(sqlite_app, box).messages == 0  # both are older than the window
    with transaction(sqlite_app.sessions) as session:
        user = session.scalars(select(User)).one()
        user.password_hash = hash_password(PASSWORD)
        token = create_api_token(session, user=user, name="test")[0]
    with TestClient(create_web_app(sqlite_app)) as web:
        csrf = sign_in(web, f"{login}@acme.example")
        made = web.post(
            "/records",
            data={
                "csrf_token": csrf,
                "type": "contact",
                "name": "Sue",
                "email": "sue@client.example",
            },
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert "linked=0" in made.headers["location"]
        page = made.headers["location"].split("?")[0]
        record_id = int(page.rsplit("/", 1)[1])
        started = web.post(
            f"{page}/server-search",
            data={"csrf_token": csrf},
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert started.status_code == 303
        deadline = time.monotonic() + 60  # a wait for the thread, not a timing assertion
        while server_search_state(record_id) == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        shown = web.get(page).text
        # The API offers the same search; run again, it fetches nothing twice.
        again = web.post(
            f"/api/v1/records/contact/{record_id}/server-search",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert again.status_code == 202 and again.json() == {"started": True}
        deadline = time.monotonic() + 60
        while server_search_state(record_id) == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "0 older message(s) fetched" in (server_search_state(record_id) or "")
    assert "Searched 1 mailbox(es) on the server: 2 older message(s) fetched" in shown
    with sqlite_app.sessions() as session:
        linked = session.scalars(
            select(MessageLink.reason).where(MessageLink.record_id == record_id)
        ).all()
    assert linked == ["address:main", "address:main"]
