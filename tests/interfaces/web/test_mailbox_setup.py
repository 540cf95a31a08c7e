"""Connecting and changing mailboxes in the dashboard and API against the real Dovecot and
SMTP servers: POP3 connect, SMTP tested before saving, a password change that re-enables."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import MailboxSmtp
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import SmtpTestServer
from tests.conftest_web import Tenant, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, wait_for_syncs


def test_pop3_connect_with_smtp_password_change_and_api(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
) -> None:
    tenant: Tenant = seed_tenant(sqlite_app, "Alpha")
    user, password = imap_user
    csrf = sign_in(web, tenant.member)
    form = {
        "csrf_token": csrf,
        "protocol": "pop3",
        "host": dovecot.host,
        "port": str(dovecot.pop3s_port),
        "security": "ssl",
        "username": user,
        "password": password,
        "allow_self_signed": "true",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.smtps_port),
        "smtp_security": "ssl",
        "smtp_username": smtp.username,
        "smtp_password": "wrong-smtp-password",
    }
    tested = web.post("/mailboxes/test", data=form, headers=ORIGIN)
    assert "Test failed" in tested.text and "Fix:" in tested.text
    refused = web.post("/mailboxes", data=form, headers=ORIGIN)
    assert refused.status_code == 422 and "Fix:" in refused.text
    assert password not in refused.text and "wrong-smtp-password" not in refused.text
    form["smtp_password"] = smtp.password
    tested = web.post("/mailboxes/test", data=form, headers=ORIGIN)
    assert "Connection works." in tested.text and "SMTP: logged in" in tested.text
    made = web.post("/mailboxes", data=form, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text[-800:]
    with sqlite_app.sessions() as session:
        box = session.scalars(select(Mailbox).where(Mailbox.protocol == "pop3")).one()
        assert session.scalar(select(MailboxSmtp.port).where(MailboxSmtp.mailbox_id == box.id))
        box_id = box.id
    checked = web.post(f"/mailboxes/{box_id}/test", data={"csrf_token": csrf}, headers=ORIGIN)
    assert "POP3: logged in" in checked.text and "SMTP: logged in" in checked.text

    # The mailbox failed (say, after a password change at the provider): a wrong new
    # password is refused with its fix; the right one is saved and re-enables it.
    with sqlite_app.sessions() as session:
        session.execute(
            update(Mailbox).where(Mailbox.id == box_id).values(enabled=False, status="failed")
        )
        session.commit()
    wrong = web.post(
        f"/mailboxes/{box_id}/password",
        data={"csrf_token": csrf, "password": "not-it"},
        headers=ORIGIN,
    )
    assert wrong.status_code == 422 and "Fix:" in wrong.text
    right = web.post(
        f"/mailboxes/{box_id}/password",
        data={"csrf_token": csrf, "password": password},
        headers=ORIGIN,
    )
    assert "New password saved" in right.text
    wait_for_syncs(box_id)
    with sqlite_app.sessions() as session:
        assert session.get(Mailbox, box_id).enabled  # type: ignore[union-attr]

    # The API does the same, for its caller's mailboxes only.
    api = {"Authorization": f"Bearer {tenant.member_token}"}
    assert web.post(f"/api/v1/mailboxes/{box_id}/test", headers=api).json()["ok"] is True
    bad = web.patch(f"/api/v1/mailboxes/{box_id}", json={"password": "nope"}, headers=api)
    assert bad.status_code == 502 and bad.json()["hint"] and "nope" not in bad.text
    assert (
        web.patch(f"/api/v1/mailboxes/{box_id}", json={"password": password}, headers=api).json()[
            "id"
        ]
        == box_id
    )
    smtp_set = web.put(
        f"/api/v1/mailboxes/{box_id}/smtp",
        json={"host": "127.0.0.1", "port": smtp.starttls_port, "security": "starttls"},
        headers=api,
    )
    assert smtp_set.status_code == 502  # the IMAP login is not the SMTP one: refused, unsaved
    wait_for_syncs(box_id)  # the password change started one; SQLite has one writer
    created = web.post(
        "/api/v1/mailboxes",
        json={
            "host": dovecot.host,
            "port": dovecot.imaps_port,
            "username": user,
            "password": password,
            "allow_self_signed": True,
        },
        headers=api,
    )
    assert created.status_code == 201, created.text
    assert created.json()["protocol"] == "imap" and password not in created.text
