"""Inline images (`cid:` parts of multipart/related) are shown from the message itself, in
the same sandboxed frame under the same CSP; only network images wait for "show images"
(issue 11 item 16)."""

from __future__ import annotations

import base64
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Message
from mailroom.mail.html import BLOCKED_IMAGE, sanitise_html
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.memory_source import MemorySource
from tests.conftest_web import Tenant, sign_in

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def related_message(html: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jo <jo@client-alpha.example>"
    msg["To"] = "admin@alpha.example"
    msg["Subject"] = "Our logo"
    msg["Message-ID"] = "<logo-mail@client-alpha.example>"
    msg.set_content("Our logo")
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<Logo.1@client-alpha>")
    return msg.as_bytes()


def test_a_cid_image_is_shown_from_the_message_and_not_counted_as_remote(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    html = (
        "<p>Hi</p><img src='cid:Logo.1@client-alpha' alt='logo'>"
        "<img src='cid:missing@x' alt='gone'>"
    )
    source = MemorySource()
    source.folders["INBOX"].uidnext = 100  # after the UIDs the tenant's first sync saw
    source.folders["INBOX"].append(related_message(html))
    assert sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: source).error is None
    with sqlite_app.sessions() as session:
        message_id = session.scalar(select(Message.id).where(Message.subject == "Our logo"))
    sign_in(web, alpha.admin)
    page = web.get(f"/messages/{message_id}").text
    assert "remote image" not in page  # nothing to hold back: no "Show remote images"
    body = web.get(f"/messages/{message_id}/body")
    data_uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert f'<img src="{data_uri}" alt="logo">' in body.text
    assert f'<img src="{BLOCKED_IMAGE}" alt="gone">' in body.text  # not in the message
    csp = body.headers["content-security-policy"]
    assert "img-src 'self' data:;" in csp and "default-src 'none'" in csp  # still no network
    assert csp.startswith("sandbox")


def test_only_network_images_count_as_blocked_and_mail_written_data_uris_never_pass() -> None:
    safe = sanitise_html(
        "<img src='cid:a@b'><img src='https://t.example/p.png'>"
        "<img src='data:image/png;base64,AAAA'>",
        inline={"a@b": "data:image/png;base64,QUJD"},
    )
    assert safe.blocked_images == 1
    assert '<img src="data:image/png;base64,QUJD">' in safe.html
    assert "AAAA" not in safe.html and "t.example" not in safe.html
