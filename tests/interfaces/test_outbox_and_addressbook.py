"""Issue 13 items 8 and 11 on the page and the API: the Outbox shows a sender their own
sends (an admin the company's, never another company's), a failed send is red (banner on
every page, the fix and a Retry button), never a green success; the address book
suggests records' and recent correspondents' addresses as the viewer may see them; the
signature and a mailbox's feeds are settings on both interfaces.

Sends go to the real aiosmtpd of tests/conftest_smtp.py: `reject…@` gets 550 (failed),
`defer…@` 451 (retrying).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mailroom.app import App
from mailroom.crm.companies import add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Message, User
from mailroom.db.outbox_models import OutboxEntry
from mailroom.db.web_models import CompanyPrivacy
from mailroom.security.auth import create_api_token
from mailroom.security.passwords import hash_password
from mailroom.web.app import create_web_app
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env
from tests.conftest_web import PASSWORD, seed_tenant, sign_in
from tests.helpers.matching_kit import ingest

ORIGIN = {"Origin": "http://testserver"}


@dataclass
class People:
    """Ann (member, sends), Bob (member, no mailbox), Cara (admin); API tokens by name."""

    env: OutboxEnv
    tokens: dict[str, str]


@pytest.fixture
def people(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    fast_hashing: None,
) -> People:
    env = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch)
    tokens = {}
    with transaction(sqlite_app.sessions) as session:
        session.execute(
            update(User)
            .where(User.email == "ann@acme.example")
            .values(password_hash=hash_password(PASSWORD))
        )
        company = session.scalar(select(Company).where(Company.name == "Acme"))
        assert company is not None
        add_user(session, company=company, email="bob@acme.example", password=PASSWORD)
        add_user(session, company=company, email="cara@acme.example", password=PASSWORD, admin=True)
        session.flush()
        for user in session.scalars(select(User).where(User.company_id == company.id)):
            tokens[user.email.split("@")[0]] = create_api_token(session, user=user, name="t")[0]
    return People(env, tokens)


@pytest.fixture
def client(people: People) -> Iterator[TestClient]:
    with TestClient(create_web_app(people.env.app)) as web:
        yield web


def auth(people: People, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {people.tokens[who]}"}


def compose(client: TestClient, people: People, csrf: str, to: str) -> object:
    return client.post(
        "/compose",
        data={
            "csrf_token": csrf,
            "mailbox": str(people.env.mailbox_id),
            "to": to,
            "subject": f"To {to}",
            "text": "Hello",
        },
        headers=ORIGIN,
        follow_redirects=False,
    )


def test_a_refused_send_is_red_on_the_form_the_outbox_and_every_page_never_green(
    people: People, client: TestClient
) -> None:
    csrf = sign_in(client, "ann@acme.example")
    answer = compose(client, people, csrf, "reject-me@client.example")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    page = answer.text  # type: ignore[attr-defined]
    assert 'class="error" role="alert"' in page and 'class="notice"' not in page
    records = client.get("/records").text
    assert 'id="send-failed-banner"' in records
    assert "One of your messages could not be sent." in records
    outbox = client.get("/outbox").text
    assert 'data-state="failed"' in outbox and "Fix:" in outbox
    (entry_id,) = [
        e["id"] for e in client.get("/api/v1/outbox", headers=auth(people, "ann")).json()["items"]
    ]
    assert f'id="retry-{entry_id}"' in outbox
    retried = client.post(
        f"/outbox/{entry_id}/retry",
        data={"csrf_token": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert retried.status_code == 303 and "notice=retry-waiting" in retried.headers["location"]
    again = client.get(retried.headers["location"]).text
    assert 'class="error" role="alert">Still not sent' in again
    with people.env.app.sessions() as session:
        entry = session.get(OutboxEntry, entry_id)
        assert entry is not None and entry.attempts == 2 and entry.status == "failed"
    assert people.env.smtp.messages == []
    other = client.post(
        f"/api/v1/outbox/{entry_id}/dismiss", headers=auth(people, "bob"), json=None
    )
    assert other.status_code == 404  # a colleague's send is not Bob's to dismiss
    dismissed = client.post(
        f"/outbox/{entry_id}/dismiss", data={"csrf_token": csrf}, headers=ORIGIN
    )
    assert dismissed.status_code == 200 and 'data-state="dismissed"' in dismissed.text
    assert 'id="send-failed-banner"' not in client.get("/records").text
    again_api = client.post(f"/api/v1/outbox/{entry_id}/dismiss", headers=auth(people, "ann"))
    assert again_api.status_code == 422  # only a failed or held send is dismissed


def test_a_send_the_server_defers_goes_to_the_outbox_as_retrying_with_the_reason(
    people: People, client: TestClient
) -> None:
    csrf = sign_in(client, "ann@acme.example")
    answer = compose(client, people, csrf, "defer-me@client.example")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith("/outbox?notice=send-retrying")
    page = client.get(location).text
    assert '<p class="error" role="alert">Not sent' in page
    assert 'data-state="retrying"' in page and "Next attempt:" in page
    assert 'class="notice"' not in page
    (item,) = client.get("/api/v1/outbox", headers=auth(people, "ann")).json()["items"]
    assert item["state"] == "retrying" and item["error"] and item["next_attempt_at"]


def test_the_outbox_shows_own_sends_admins_see_the_company_and_no_one_another_company(
    people: People, client: TestClient
) -> None:
    csrf = sign_in(client, "ann@acme.example")
    assert compose(client, people, csrf, "jo@client.example").status_code == 303  # type: ignore[attr-defined]
    beta = seed_tenant(people.env.app, "Beta")
    with people.env.app.sessions() as session:
        beta_admin = session.scalar(select(User).where(User.email == beta.admin))
        assert beta_admin is not None
        beta_token = create_api_token(session, user=beta_admin, name="t")[0]
        session.commit()
    mine = client.get("/api/v1/outbox", headers=auth(people, "ann")).json()["items"]
    assert [(e["state"], e["recipients"]) for e in mine] == [("sent", ["jo@client.example"])]
    assert mine[0]["logged_message"]  # `outbox list --json`'s fields are kept
    assert client.get("/api/v1/outbox", headers=auth(people, "bob")).json()["items"] == []
    admin = client.get("/api/v1/outbox", headers=auth(people, "cara")).json()["items"]
    assert [e["id"] for e in admin] == [mine[0]["id"]] and admin[0]["own"] is False
    assert client.get("/api/v1/outbox?scope=mine", headers=auth(people, "cara")).json() == {
        "items": []
    }
    other = {"Authorization": f"Bearer {beta_token}"}
    assert client.get("/api/v1/outbox", headers=other).json()["items"] == []
    assert (
        client.get("/api/v1/outbox?scope=company", headers=auth(people, "bob")).status_code == 404
    )
    retry = client.post(f"/api/v1/outbox/{mine[0]['id']}/retry", headers=other)
    assert retry.status_code == 404
    client.post("/signout", data={"csrf_token": csrf}, headers=ORIGIN)
    sign_in(client, "bob@acme.example")
    assert "jo@client.example" not in client.get("/outbox").text


def test_the_address_book_suggests_records_then_recent_mail_as_the_viewer_may_see_it(
    people: People, client: TestClient
) -> None:
    env = people.env
    ingest(
        env.app,
        env.mailbox_id,
        build_message(sender="Pat Buyer <pat@newco.example>", message_id="<ab1@newco.example>"),
    )
    found = client.get("/api/v1/addressbook?q=jo", headers=auth(people, "bob")).json()["items"]
    assert found[0] == {
        "address": "jo@client.example",
        "name": "Jo Client",
        "source": "record",
        "record": f"contact:{env.contact_id}",
    }
    recent = client.get("/api/v1/addressbook?q=pat", headers=auth(people, "bob")).json()
    assert [i["address"] for i in recent["items"]] == ["pat@newco.example"]
    own = client.get("/api/v1/addressbook?q=ann", headers=auth(people, "ann")).json()["items"]
    assert "ann@acme.example" not in [i["address"] for i in own]
    with transaction(env.app.sessions) as session:  # strict: Bob was not on Ann's mail
        company = session.scalar(select(Company).where(Company.name == "Acme"))
        assert company is not None
        session.add(CompanyPrivacy(company_id=company.id, visibility="strict"))
    hidden = client.get("/api/v1/addressbook?q=pat", headers=auth(people, "bob")).json()
    assert hidden["items"] == []
    shown = client.get("/api/v1/addressbook?q=pat", headers=auth(people, "ann")).json()
    assert [i["address"] for i in shown["items"]] == ["pat@newco.example"]
    everything = client.get("/api/v1/addressbook", headers=auth(people, "ann")).json()["items"]
    assert len(everything) <= 20
    assert (
        client.get("/api/v1/addressbook?limit=21", headers=auth(people, "ann")).status_code == 422
    )
    sign_in(client, "ann@acme.example")
    form = client.get("/compose").text
    assert '<datalist id="addressbook">' in form and 'value="jo@client.example"' in form
    assert client.get("/compose/addressbook?q=pat").json()["items"][0]["address"] == (
        "pat@newco.example"
    )


def test_signature_and_feeds_are_settings_on_the_page_and_the_api(
    people: People, client: TestClient
) -> None:
    env = people.env
    put = client.put(
        "/api/v1/account/signature", json={"signature": "Ann\nAcme"}, headers=auth(people, "ann")
    )
    assert put.status_code == 200 and put.json() == {"signature": "Ann\nAcme"}
    csrf = sign_in(client, "ann@acme.example")
    assert "Ann\nAcme</textarea>" in client.get("/account").text
    saved = client.post(
        "/account/signature",
        data={"csrf_token": csrf, "signature": "Ann Seller"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert client.get("/api/v1/account/signature", headers=auth(people, "ann")).json() == {
        "signature": "Ann Seller"
    }
    assert "Add my signature below the text" in client.get("/compose").text
    feeds = f"/api/v1/mailboxes/{env.mailbox_id}/feeds"
    assert client.get(feeds, headers=auth(people, "ann")).json()["feeds"] == [
        "lead", "contact", "account", "case", "opportunity",
    ]  # fmt: skip
    changed = client.put(feeds, json={"feeds": ["case", "contact"]}, headers=auth(people, "ann"))
    assert changed.json() == {"feeds": ["contact", "case"]}
    bad = client.put(feeds, json={"feeds": ["client"]}, headers=auth(people, "ann"))
    assert bad.status_code == 422 and "client" in bad.json()["message"]
    assert client.get(feeds, headers=auth(people, "bob")).status_code == 404
    page = client.get(f"/mailboxes/{env.mailbox_id}/settings").text
    assert 'value="contact" checked' in page and 'value="lead" >' in page
    posted = client.post(
        f"/mailboxes/{env.mailbox_id}/feeds",
        data={"csrf_token": csrf, "feeds": ["lead", "contact", "account", "case", "opportunity"]},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert len(client.get(feeds, headers=auth(people, "ann")).json()["feeds"]) == 5


def test_the_api_starts_a_reply_all_and_a_forward_like_the_form(
    people: People, client: TestClient
) -> None:
    env = people.env
    ingest(
        env.app,
        env.mailbox_id,
        build_message(
            to="ann@acme.example, pat@client.example",
            cc="boss@client.example, ann@acme.example",
            subject="Plans",
            body="The plans.",
            message_id="<plans@client.example>",
            attachment=("plans.pdf", b"%PDF plans"),
        ),
    )
    with env.app.sessions() as session:
        message = session.scalar(
            select(Message.id).where(Message.message_id == "plans@client.example")
        )
    start = client.get(
        f"/api/v1/compose?mode=reply-all&message={message}", headers=auth(people, "ann")
    ).json()
    assert (start["to"], start["cc"]) == (
        ["jo@client.example", "pat@client.example"],
        ["boss@client.example"],
    )
    assert start["subject"] == "Re: Plans" and start["reply_to"] == message
    assert "> The plans." in start["quoted"]
    forward = client.get(
        f"/api/v1/compose?mode=forward&message={message}", headers=auth(people, "ann")
    ).json()
    assert forward["subject"] == "Fwd: Plans" and forward["forward_attachments"] == ["plans.pdf"]
    sent = client.post(
        "/api/v1/messages",
        json={
            "mailbox_id": env.mailbox_id,
            "to": ["partner@partner.example"],
            "text": "See below.",
            "forward_of": message,
        },
        headers=auth(people, "ann"),
    )
    assert sent.status_code == 201, sent.text
    (got,) = env.smtp.messages
    assert b"plans.pdf" in got.data and b"Subject: Fwd: Plans" in got.data
    beta = seed_tenant(env.app, "Beta")
    foreign = client.get(
        f"/api/v1/compose?mode=reply&message={beta.message_ids[0]}", headers=auth(people, "ann")
    )
    assert foreign.status_code == 404
