"""Aliases cannot open a colleague's private mail (issue 11, item 1).

Before: a member who connected a mailbox with a colleague's address as an alias read that
colleague's private mail in a strict company, because every alias counted as the member's
own address. Now an alias that is another user's address or alias is refused before
anything is saved or logged in to, and any other alias counts only once an admin approved
it.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, User
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from tests.conftest_web import seed_tenant
from tests.interfaces.api.test_visibility import bearer, later_source


def test_an_alias_that_is_a_colleagues_address_is_refused_before_login(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    beta = seed_tenant(sqlite_app, "Beta")
    body = {"host": "imap.never-contacted.invalid", "password": "pw-123456"}
    for taken in (alpha.admin, beta.admin):  # a colleague's, another company's
        answer = web.post(
            "/api/v1/mailboxes",
            json={**body, "aliases": [taken]},
            headers=bearer(alpha.member_token),
        )
        assert answer.status_code == 422, answer.text
        assert "cannot be an alias" in answer.json()["message"]
        assert "Beta" not in answer.text
    with sqlite_app.sessions() as session:
        member = session.scalar(select(User).where(User.email == alpha.member))
        assert member is not None
        owned = session.scalars(select(Mailbox).where(Mailbox.user_id == member.id)).all()
        assert owned == []


def test_a_pending_alias_opens_no_private_mail_until_an_admin_approves_it(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    shared = "sales@alpha.example"  # nobody's address yet: a member claims it
    private = build_message(
        sender="Jo <jo@client-alpha.example>", to=shared, subject="For sales only", minutes=9
    )
    report = sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: later_source(private))
    assert report.error is None
    with transaction(sqlite_app.sessions) as session:
        member = session.scalar(select(User).where(User.email == alpha.member))
        assert member is not None
        box = add_mailbox(
            session,
            sqlite_app.secrets,
            user=member,
            host="imap.test",
            port=993,
            password="pw-123",
            aliases=[shared],
        )
        box_id = box.id
    with sqlite_app.sessions() as session:
        message_id = session.scalar(select(Message.id).where(Message.subject == "For sales only"))
    wanted = f"/api/v1/messages/{message_id}"
    assert web.get(wanted, headers=bearer(alpha.admin_token)).status_code == 200
    assert web.get(wanted, headers=bearer(alpha.member_token)).status_code == 404

    mailbox = web.get(f"/api/v1/mailboxes/{box_id}", headers=bearer(alpha.member_token)).json()
    assert mailbox["pending_aliases"] == [shared]
    approve = f"/api/v1/mailboxes/{box_id}/aliases/approve"
    refused = web.post(approve, json={"address": shared}, headers=bearer(alpha.member_token))
    assert refused.status_code == 404  # members cannot approve their own claims
    assert web.get(wanted, headers=bearer(alpha.member_token)).status_code == 404
    approved = web.post(approve, json={"address": shared}, headers=bearer(alpha.admin_token))
    assert approved.status_code == 200, approved.text
    assert approved.json()["pending_aliases"] == []
    assert web.get(wanted, headers=bearer(alpha.member_token)).status_code == 200
