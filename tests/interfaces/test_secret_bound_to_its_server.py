"""A stored mailbox password only ever goes to the server it was entered for (issue 11,
item 2), whoever asks and through whichever interface.

The SMTP server here is the real aiosmtpd recorder: it logs every AUTH attempt, so the
tests prove the member's IMAP password never reached it. Before the fix an admin's
`PUT /api/v1/mailboxes/{id}/smtp` with a new host made Mailroom log in there with the
member's stored IMAP login and password.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import User
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.mailboxes.store import add_mailbox
from tests.conftest_smtp import SmtpTestServer
from tests.conftest_web import Tenant, seed_tenant
from tests.helpers.mailbox_state import run_cli, stored

IMAP_PASSWORD = "member-imap-password-7f3"


def _member_mailbox(app: App, tenant: Tenant) -> int:
    """The member's own mailbox on an IMAP host of its own (never contacted here)."""
    with transaction(app.sessions) as session:
        member = session.query(User).filter_by(email=tenant.member).one()
        box = add_mailbox(
            session,
            app.secrets,
            user=member,
            host="imap.member.test",
            port=993,
            password=IMAP_PASSWORD,
            allow_self_signed=True,
        )
        return box.id


def _leaked(smtp: SmtpTestServer) -> bool:
    return any(IMAP_PASSWORD in password for _, password in smtp.auth_attempts)


def test_admin_cannot_repoint_a_members_smtp_to_capture_the_imap_password(
    web: TestClient, sqlite_app: App, smtp: SmtpTestServer
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    box = _member_mailbox(sqlite_app, tenant)
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    body = {"host": "127.0.0.1", "port": smtp.smtps_port, "security": "ssl"}
    before = stored(sqlite_app)

    put = web.put(f"/api/v1/mailboxes/{box}/smtp", json=body, headers=admin)
    assert put.status_code == 403, put.text
    assert put.json()["error"] == "forbidden"
    assert smtp.auth_attempts == [] and not _leaked(smtp)
    # Nor with a login of the admin's own, nor the incoming server or password.
    own = {**body, "username": smtp.username, "password": smtp.password}
    assert web.put(f"/api/v1/mailboxes/{box}/smtp", json=own, headers=admin).status_code == 403
    patch = web.patch(f"/api/v1/mailboxes/{box}", json={"password": "admin-s-guess"}, headers=admin)
    assert patch.status_code == 403
    assert smtp.auth_attempts == []
    assert stored(sqlite_app) == before
    # What an admin may still do with a member's mailbox: see and test it.
    assert web.get(f"/api/v1/mailboxes/{box}", headers=admin).status_code == 200


def test_owner_moving_smtp_to_another_host_must_give_its_password(
    web: TestClient, sqlite_app: App, smtp: SmtpTestServer
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    box = _member_mailbox(sqlite_app, tenant)
    member = {"Authorization": f"Bearer {tenant.member_token}"}
    url = f"/api/v1/mailboxes/{box}/smtp"
    body = {"host": "127.0.0.1", "port": smtp.smtps_port, "security": "ssl"}

    refused = web.put(url, json=body, headers=member)
    assert refused.status_code == 422, refused.text
    assert "will not send the mailbox's password" in refused.json()["message"]
    assert IMAP_PASSWORD not in refused.text
    assert smtp.auth_attempts == []

    # Given in the same request, its own login is what the new host gets.
    own = {**body, "username": smtp.username, "password": smtp.password}
    saved = web.put(url, json=own, headers=member)
    assert saved.status_code == 200, saved.text
    assert saved.json()["own_password"] is True
    assert smtp.auth_attempts == [(smtp.username, smtp.password)]

    # Moving the SMTP server again drops that secret: no password, no login anywhere.
    moved = {"host": "127.0.0.1", "port": smtp.starttls_port, "security": "starttls"}
    assert web.put(url, json=moved, headers=member).status_code == 422
    assert len(smtp.auth_attempts) == 1 and not _leaked(smtp)


def test_smtp_rows_saved_before_the_rule_never_send_the_imap_password_elsewhere(
    web: TestClient, sqlite_app: App, smtp: SmtpTestServer
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    box = _member_mailbox(sqlite_app, tenant)
    with transaction(sqlite_app.sessions) as session:  # an old row: IMAP login, other host
        row = MailboxSmtp(mailbox_id=box, host="127.0.0.1", port=smtp.smtps_port)
        row.security, row.preset = "ssl", "generic"
        session.add(row)
    member = {"Authorization": f"Bearer {tenant.member_token}"}
    tested = web.post(f"/api/v1/mailboxes/{box}/test", headers=member)
    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    assert "will not send the mailbox's password" in tested.json()["error"]
    assert smtp.auth_attempts == []


def test_cli_new_incoming_host_without_the_password_is_refused(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    box = str(_member_mailbox(sqlite_app, tenant))
    before = stored(sqlite_app)
    capsys.readouterr()
    code = run_cli(sqlite_app, monkeypatch, "mailbox", "edit", box, "--host", "imap.other.invalid")
    assert code == 1
    assert "A new server needs the mailbox's password" in capsys.readouterr().err
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "edit", box, "--port", "143") == 1
    assert stored(sqlite_app) == before
