"""Pytest plugin for the dashboard and API: seeded companies, signed-in clients, a live server.

- `seed_tenant(app, name)` makes a company with an admin and a member (both with
  passwords), the admin's mailbox, a contact and an account, and syncs three real built
  messages (one HTML with a remote image, one with an attachment, one reply) through the
  real sync engine from an in-memory source; it returns every id a test needs.
- `web` is a TestClient on a fresh SQLite app; `sign_in(client, email)` signs in through
  the real form and returns the page's CSRF token.
- `live_server` serves the app with uvicorn on 127.0.0.1 in a thread (for Chromium).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Attachment, Message
from mailroom.ingest.bodies import fill_bodies
from mailroom.mailboxes.store import add_mailbox
from mailroom.security import passwords
from mailroom.security.auth import create_api_token
from mailroom.sync.engine import sync_mailbox
from mailroom.web.app import create_web_app
from mailroom_testing.builders import build_message
from mailroom_testing.memory_source import MemorySource

PASSWORD = "correct-horse-1"
HTML = "<p>Hello from <b>{name}</b></p><img src='https://tracker.example/pixel.png' alt='logo'>"


@dataclass
class Tenant:
    """Everything `seed_tenant` made, by id."""

    company_id: int
    admin: str
    member: str
    mailbox_id: int
    contact_id: int
    account_id: int
    message_ids: list[int] = field(default_factory=list)
    message_id_headers: list[str] = field(default_factory=list)
    attachment: tuple[int, int] = (0, 0)
    admin_token: str = ""
    member_token: str = ""


def seed_tenant(app: App, name: str) -> Tenant:
    slug = name.lower()
    domain = f"{slug}.example"
    client = f"jo@client-{slug}.example"
    with transaction(app.sessions) as session:
        company = add_company(session, name=name, domains=[domain])
        admin = add_user(
            session, company=company, email=f"admin@{domain}", admin=True, password=PASSWORD
        )
        member = add_user(session, company=company, email=f"member@{domain}", password=PASSWORD)
        mailbox = add_mailbox(
            session, app.secrets, user=admin, host="imap.test", port=993, password="pw-123"
        )
        contact = add_record(
            session,
            company=company,
            record_type="contact",
            name=f"Jo {name}",
            emails=[EmailField("main", client)],
        )
        account = add_record(
            session,
            company=company,
            record_type="account",
            name=f"Client {name}",
            domains=[f"client-{slug}.example"],
        )
        tenant = Tenant(
            company_id=company.id,
            admin=admin.email,
            member=member.email,
            mailbox_id=mailbox.id,
            contact_id=contact.id,
            account_id=account.id,
            admin_token=create_api_token(session, user=admin, name="test")[0],
            member_token=create_api_token(session, user=member, name="test")[0],
        )
    source = MemorySource()
    first = f"<first-{slug}@client.example>"
    source.folders["INBOX"].append(
        build_message(
            sender=f"Jo <{client}>",
            to=f"admin@{domain}",
            subject=f"Quote for {name}",
            html=HTML.format(name=name),
            message_id=first,
            minutes=1,
        )
    )
    source.folders["INBOX"].append(
        build_message(
            sender=client,
            to=f"admin@{domain}",
            subject="Contract",
            minutes=2,
            attachment=("contract.pdf", b"%PDF-1.4 test"),
        )
    )
    source.folders["Sent"].append(
        build_message(
            sender=f"admin@{domain}",
            to=client,
            subject=f"Re: Quote for {name}",
            in_reply_to=first,
            minutes=3,
        )
    )
    report = sync_mailbox(app, tenant.mailbox_id, opener=lambda _m, _a: source)
    assert report.error is None, report.error
    with transaction(app.sessions) as session:  # what `serve` does after each sync
        fill_bodies(session, blobs=app.blobs, company_id=tenant.company_id)
    with app.sessions() as session:
        rows = session.execute(
            select(Message.id, Message.message_id)
            .where(Message.company_id == tenant.company_id)
            .order_by(Message.id)
        ).all()
        tenant.message_ids = [r[0] for r in rows]
        tenant.message_id_headers = [r[1] for r in rows]
        att = session.scalars(
            select(Attachment).where(Attachment.message_id.in_(tenant.message_ids))
        ).one()
        tenant.attachment = (att.message_id, att.id)
    return tenant


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the signed-in page's CSRF token."""
    token = csrf_of(client.get("/signin").text)
    response = client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": token},
        headers={"Origin": str(client.base_url).rstrip("/")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/account").text)


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 still, with the smallest cost, so seeding users does not dominate the tests."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)


@pytest.fixture
def web(sqlite_app: App, fast_hashing: None) -> Iterator[TestClient]:
    with TestClient(create_web_app(sqlite_app)) as client:
        yield client


@pytest.fixture
def two_tenants(sqlite_app: App, fast_hashing: None) -> tuple[Tenant, Tenant]:
    return seed_tenant(sqlite_app, "Alpha"), seed_tenant(sqlite_app, "Beta")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    app: App
    url: str


@contextmanager
def serve_app(app: App) -> Iterator[str]:
    """The app's web server (uvicorn) on a free port of 127.0.0.1 in a thread; its URL."""
    port = free_port()
    config = uvicorn.Config(create_web_app(app), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_server(sqlite_app: App) -> Iterator[LiveServer]:
    with serve_app(sqlite_app) as url:
        yield LiveServer(app=sqlite_app, url=url)
