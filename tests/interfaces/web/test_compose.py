"""Compose and reply from the dashboard and `POST /api/v1/messages`, against real servers;
the compose page's labels (the HTML body is optional HTML).

The mailbox is a real Dovecot user and sends through the real aiosmtpd server of
tests/conftest_smtp.py, so every test checks what arrived, and the timeline right after.
"""

from __future__ import annotations

import base64
import email
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mailroom.app import App
from mailroom.db.models import Message, User
from mailroom.db.outbox_models import OutboxEntry
from mailroom.security.auth import create_api_token
from mailroom.security.passwords import hash_password
from mailroom.web.app import create_web_app
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env
from tests.conftest_web import PASSWORD, Tenant, seed_tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def env(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    fast_hashing: None,
) -> OutboxEnv:
    made = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch)
    with sqlite_app.sessions() as session:
        session.execute(
            update(User)
            .where(User.email == "ann@acme.example")
            .values(password_hash=hash_password(PASSWORD), role="admin")
        )
        session.commit()
    return made


@pytest.fixture
def client(env: OutboxEnv) -> Iterator[TestClient]:
    with TestClient(create_web_app(env.app)) as web:
        yield web


def timeline_subjects(web: TestClient, kind: str, rid: int) -> str:
    return web.get(f"/records/{kind}/{rid}").text


def test_compose_from_a_case_sends_and_shows_on_its_timeline_at_once(
    env: OutboxEnv, client: TestClient
) -> None:
    csrf = sign_in(client, "ann@acme.example")
    form = client.get(f"/compose?record=case:{env.case_id}").text
    assert "[Case #" in form
    answer = client.post(
        "/compose",
        data={
            "csrf_token": csrf,
            "mailbox": str(env.mailbox_id),
            "to": "jo@client.example",
            "cc": "boss@client.example",
            "subject": "Your widget",
            "text": "We are on it.",
            "html": "<p>We are <b>on it</b>.</p>",
            "record": f"case:{env.case_id}",
        },
        files=[("attachment", ("notes.txt", b"step 1", "text/plain"))],
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == f"/records/case/{env.case_id}?notice=sent"
    (got,) = env.smtp.messages
    assert sorted(got.rcpt_tos) == ["boss@client.example", "jo@client.example"]
    parsed = email.message_from_bytes(got.data)
    assert parsed["Subject"] == f"Your widget [Case #{env.case_id}]"
    assert [p.get_filename() for p in parsed.walk() if p.get_filename()] == ["notes.txt"]
    page = client.get(answer.headers["location"]).text
    assert "Sent. It is on the timeline." in page
    assert f"Your widget [Case #{env.case_id}]" in page, page[page.find('class="timeline"') :]


def test_reply_from_a_message_threads_under_it(env: OutboxEnv, client: TestClient) -> None:
    from mailroom.sync.engine import sync_mailbox

    env.dovecot.append(
        env.imap_user,
        "INBOX",
        build_message(
            sender="Jo <jo@client.example>",
            to="ann@acme.example",
            subject="Question",
            message_id="<q1@client.example>",
        ),
    )
    assert sync_mailbox(env.app, env.mailbox_id).error is None
    with env.app.sessions() as session:
        parent = session.scalar(select(Message.id).where(Message.message_id == "q1@client.example"))
    csrf = sign_in(client, "ann@acme.example")
    message_page = client.get(f"/messages/{parent}").text
    assert f'href="/compose?mode=reply&amp;message={parent}"' in message_page
    form = client.get(f"/compose?reply={parent}").text  # the older link still works
    assert 'value="jo@client.example"' in form and 'value="Re: Question"' in form
    answer = client.post(
        "/compose",
        data={
            "csrf_token": csrf,
            "mailbox": str(env.mailbox_id),
            "to": "jo@client.example",
            "subject": "Question",
            "text": "Here is the answer.",
            "reply": str(parent),
        },
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:500]
    parsed = email.message_from_bytes(env.smtp.messages[0].data)
    assert parsed["In-Reply-To"] == "<q1@client.example>" and parsed["Subject"] == "Re: Question"
    assert "Re: Question" in timeline_subjects(client, "contact", env.contact_id)


def test_bad_input_and_limits_come_back_on_the_form_and_nothing_is_sent(
    env: OutboxEnv, client: TestClient
) -> None:
    csrf = sign_in(client, "ann@acme.example")
    base = {"csrf_token": csrf, "mailbox": str(env.mailbox_id), "subject": "Hi", "text": "x"}
    bad = client.post("/compose", data=base | {"to": "not an address"}, headers=ORIGIN)
    assert bad.status_code == 422 and 'class="error"' in bad.text
    assert 'value="not an address"' in bad.text  # the form comes back filled in
    many = ", ".join(f"r{i}@client.example" for i in range(101))
    limited = client.post("/compose", data=base | {"to": many}, headers=ORIGIN)
    assert limited.status_code == 422 and "100 recipients" in limited.text, limited.text[-900:]
    assert env.smtp.messages == []
    with env.app.sessions() as session:
        assert session.scalars(select(OutboxEntry)).all() == []


def test_api_sends_and_replies_and_refuses_other_peoples_mailboxes(
    env: OutboxEnv, client: TestClient
) -> None:
    with env.app.sessions() as session:
        ann = session.scalar(select(User).where(User.email == "ann@acme.example"))
        assert ann is not None
        token = create_api_token(session, user=ann, name="t")[0]
        session.commit()
    beta = seed_tenant(env.app, "Beta")
    auth = {"Authorization": f"Bearer {token}"}
    body = {
        "mailbox_id": env.mailbox_id,
        "to": ["jo@client.example"],
        "subject": "From the API",
        "text": "Hello",
        "record": f"contact:{env.contact_id}",
        "attachments": [{"filename": "a.txt", "data": base64.b64encode(b"hi").decode()}],
    }
    sent = client.post("/api/v1/messages", json=body, headers=auth)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "sent" and sent.json()["message"]
    timeline = client.get(f"/api/v1/records/contact/{env.contact_id}/timeline", headers=auth).json()
    assert timeline["items"][0]["subject"] == "From the API"
    assert timeline["items"][0]["direction"] == "outbound"
    reply = client.post(
        "/api/v1/messages",
        json=body | {"reply_to": sent.json()["message"], "subject": "", "attachments": []},
        headers=auth,
    )
    assert reply.status_code == 201, reply.text
    assert email.message_from_bytes(env.smtp.messages[1].data)["Subject"] == "Re: From the API"
    for foreign in (
        {"mailbox_id": beta.mailbox_id},
        {"record": f"contact:{beta.contact_id}"},
        {"reply_to": beta.message_ids[0]},
    ):
        refused = client.post("/api/v1/messages", json=body | foreign, headers=auth)
        assert refused.status_code == 404, (foreign, refused.text)
    bad = client.post("/api/v1/messages", json=body | {"to": ["x"]}, headers=auth)
    assert bad.status_code == 422 and bad.json()["message"]
    assert len(env.smtp.messages) == 2


def test_compose_page_labels_the_html_body_as_optional_html(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    sign_in(web, alpha.admin)
    page = web.get("/compose").text
    assert "HTML body (optional, raw HTML)" in page and "Message (plain text)" in page
    assert "If you leave the plain-text message empty, one is made from this HTML." in page
