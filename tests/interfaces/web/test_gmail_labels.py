"""A Gmail message's labels (message_copies.labels, from X-GM-LABELS: sync/gmail.py) are
shown on the message page and in the message API's `labels` field; mail from other
servers has none. Synced through the Gmail proxy in front of the real Dovecot."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.companies import add_user, get_user
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Mailbox, Message, User
from mailroom.security import passwords
from mailroom.security.auth import create_api_token
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.gmail_proxy import GmailProxy
from tests.conftest_web import PASSWORD, sign_in
from tests.integration.sync.test_gmail import gmail_box, mail


def owner_with_token(app: App, box: int) -> tuple[str, str]:
    """The mailbox owner's address, given a password, and an API token of theirs."""
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        user = session.get(User, mailbox.user_id)
        assert user is not None
        user.password_hash = passwords.hash_password(PASSWORD)
        return user.email, create_api_token(session, user=user, name="test")[0]


def test_a_gmail_messages_labels_are_shown_on_its_page_and_in_the_api(
    web: TestClient, sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    gmail.deliver(login, mail(login, 1), ["\\Inbox", "\\Starred", "Customers"])
    gmail.deliver(login, mail(login, 2), [])  # archived: in All Mail alone, no label
    box = gmail_box(sqlite_app, gmail, imap_user)
    assert sync_mailbox(sqlite_app, box).error is None
    email, token = owner_with_token(sqlite_app, box)
    with sqlite_app.sessions() as session:
        ids = {
            subject: mid for subject, mid in session.execute(select(Message.subject, Message.id))
        }

    answer = web.get(
        f"/api/v1/messages/{ids['Gmail 1']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["labels"] == ["Customers", "\\Inbox", "\\Starred"]
    bare = web.get(
        f"/api/v1/messages/{ids['Gmail 2']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert bare.json()["labels"] == []

    # A colleague who may see the subject only sees no labels either (the owner's filing).
    with transaction(sqlite_app.sessions) as session:
        owner = get_user(session, email)
        company = session.get(Company, owner.company_id)
        assert company is not None
        colleague = add_user(session, company=company, email="colleague@acme.example")
        colleague_token = create_api_token(session, user=colleague, name="test")[0]
        viewer = access.viewer_for(session, owner)
        access.set_sharing(session, viewer=viewer, mailbox_id=box, level="subject")
    seen = web.get(
        f"/api/v1/messages/{ids['Gmail 1']}", headers={"Authorization": f"Bearer {colleague_token}"}
    ).json()
    assert (seen["access"], seen["subject"], seen["labels"]) == ("subject", "Gmail 1", [])

    sign_in(web, email)
    page = web.get(f"/messages/{ids['Gmail 1']}").text
    assert "<dt>Labels</dt>" in page
    for shown in ('class="tag">Customers<', 'class="tag">Inbox<', 'class="tag">Starred<'):
        assert shown in page
    assert "<dt>Labels</dt>" not in web.get(f"/messages/{ids['Gmail 2']}").text
