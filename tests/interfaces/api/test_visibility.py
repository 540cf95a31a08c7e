"""Visibility through the API (issue 5, 15): transparent and strict companies, mailbox sharing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.companies import get_user
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.memory_source import MemorySource
from tests.conftest_web import Tenant, seed_tenant


def later_source(*messages: bytes) -> MemorySource:
    """A source for a mailbox already synced once: its UIDs start past the seeded ones."""
    source = MemorySource()
    source.folders["INBOX"].uidnext = 1000
    for data in messages:
        source.folders["INBOX"].append(data)
    return source


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def timeline_ids(web: TestClient, tenant: Tenant, token: str) -> list[int]:
    url = f"/api/v1/records/contact/{tenant.contact_id}/timeline"
    return [i["id"] for i in web.get(url, headers=bearer(token)).json()["items"]]


@pytest.fixture
def alpha(sqlite_app: App, fast_hashing: None) -> Tenant:
    return seed_tenant(sqlite_app, "Alpha")


def test_transparent_company_shows_every_logged_email_to_members(
    web: TestClient, alpha: Tenant
) -> None:
    assert len(timeline_ids(web, alpha, alpha.member_token)) == 3


def test_strict_company_shows_members_only_their_own_or_their_mail(
    web: TestClient, sqlite_app: App, alpha: Tenant
) -> None:
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    assert timeline_ids(web, alpha, alpha.member_token) == []
    assert len(timeline_ids(web, alpha, alpha.admin_token)) == 3  # owner of the mailbox
    refused = web.get(
        f"/api/v1/messages/{alpha.message_ids[0]}", headers=bearer(alpha.member_token)
    )
    assert refused.status_code == 404
    # a message the member took part in (Cc) becomes visible to them, and only that one
    source = later_source(
        build_message(
            sender="jo@client-alpha.example",
            to=alpha.admin,
            cc=alpha.member,
            subject="Hello both",
            minutes=9,
        )
    )
    assert sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: source).error is None
    visible = web.get(
        f"/api/v1/records/contact/{alpha.contact_id}/timeline", headers=bearer(alpha.member_token)
    ).json()["items"]
    assert [i["subject"] for i in visible] == ["Hello both"]


@pytest.mark.parametrize(
    ("level", "subject", "has_body"),
    [
        ("everything", "Quote for Alpha", True),
        ("subject", "Quote for Alpha", False),
        ("metadata", "", False),
    ],
)
def test_mailbox_sharing_level_limits_what_colleagues_see(
    web: TestClient, sqlite_app: App, alpha: Tenant, level: str, subject: str, has_body: bool
) -> None:
    with transaction(sqlite_app.sessions) as session:
        admin = access.viewer_for(session, get_user(session, alpha.admin))
        access.set_sharing(session, viewer=admin, mailbox_id=alpha.mailbox_id, level=level)
    first = alpha.message_ids[0]
    seen = web.get(f"/api/v1/messages/{first}", headers=bearer(alpha.member_token)).json()
    assert (seen["access"], seen["subject"], bool(seen["html"]), bool(seen["text"])) == (
        level,
        subject,
        has_body,
        has_body,
    )
    assert seen["from"] == "jo@client-alpha.example"  # participants are metadata
    owner = web.get(f"/api/v1/messages/{first}", headers=bearer(alpha.admin_token)).json()
    assert owner["access"] == "everything" and owner["subject"] == "Quote for Alpha"
    message_id, attachment_id = alpha.attachment
    download = web.get(
        f"/api/v1/messages/{message_id}/attachments/{attachment_id}",
        headers=bearer(alpha.member_token),
    )
    assert download.status_code == (200 if has_body else 404)
