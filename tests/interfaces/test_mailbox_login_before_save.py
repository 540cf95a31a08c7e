"""Nothing is saved that did not just log in: CLI, API and dashboard, against the real
Dovecot and the real aiosmtpd server. A wrong password on connect, on an incoming edit and
on the SMTP settings saves nothing and leaves the old settings exactly as they were."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import SmtpTestServer
from tests.conftest_web import seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli, stored, wait_for_syncs


def test_cli_add_edit_and_smtp_save_nothing_that_did_not_log_in(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, password = imap_user

    def cli(*args: str, stdin: str = "") -> int:
        return run_cli(sqlite_app, monkeypatch, *args, stdin=stdin)

    assert cli("company", "add", "Acme", "--domain", "acme.example") == 0
    assert cli("user", "add", "ann@acme.example", "--company", "Acme") == 0
    add = ("mailbox", "add", "--user", "ann@acme.example", "--host", dovecot.host)
    add += ("--port", str(dovecot.imaps_port), "--username", user)
    add += ("--password-stdin", "--allow-self-signed")
    capsys.readouterr()
    assert cli(*add, stdin="not-" + password + "\n") == 2
    assert "refused the user name or password" in capsys.readouterr().err
    assert stored(sqlite_app) == []

    assert cli(*add, stdin=password + "\n") == 0
    box = capsys.readouterr().out.strip()
    assert box.isdigit()
    before = stored(sqlite_app)
    assert cli("mailbox", "edit", box, "--password-stdin", stdin="not-" + password) == 2
    assert "refused" in capsys.readouterr().err
    assert cli("mailbox", "edit", box, "--port", str(dovecot.pop3s_port)) == 1  # no password
    moved = ("mailbox", "edit", box, "--port", str(dovecot.pop3s_port), "--password-stdin")
    assert cli(*moved, stdin=password) == 2  # not IMAP
    assert stored(sqlite_app) == before

    smtp_args = ("mailbox", "smtp", box, "--host", "127.0.0.1", "--port", str(smtp.smtps_port))
    smtp_args += ("--security", "ssl", "--username", smtp.username, "--password-stdin")
    smtp_args += ("--allow-self-signed",)
    capsys.readouterr()
    assert cli(*smtp_args, stdin="wrong-smtp-password\n") == 2
    assert capsys.readouterr().err
    assert stored(sqlite_app) == before  # no SMTP row was made
    assert cli(*smtp_args, stdin=smtp.password + "\n") == 0
    assert "sends through 127.0.0.1" in capsys.readouterr().out
    with_smtp = stored(sqlite_app)
    assert len(with_smtp) == len(before) + 1
    assert cli(*smtp_args, stdin="wrong-smtp-password\n") == 2
    assert stored(sqlite_app) == with_smtp
    assert smtp.messages == []  # logging in sends nothing

    # The right new password is saved: the edit logs in with it first.
    assert cli("mailbox", "edit", box, "--password-stdin", stdin=password) == 0
    assert "updated and re-enabled" in capsys.readouterr().out
    after = stored(sqlite_app)
    assert after[0][5] != before[0][5]  # re-encrypted (fresh nonce), same password
    leaked = "\n".join(str(row) for row in after)
    assert password not in leaked and smtp.password not in leaked


def test_api_connect_edit_and_smtp_save_nothing_that_did_not_log_in(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    user, password = imap_user
    api = {"Authorization": f"Bearer {tenant.member_token}"}
    body = {
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "username": user,
        "password": "not-" + password,
        "allow_self_signed": True,
    }
    seeded = stored(sqlite_app)
    refused = web.post("/api/v1/mailboxes", json=body, headers=api)
    assert refused.status_code == 502 and refused.json()["hint"]
    assert stored(sqlite_app) == seeded

    made = web.post("/api/v1/mailboxes", json={**body, "password": password}, headers=api)
    assert made.status_code == 201, made.text
    box = made.json()["id"]
    wait_for_syncs(box)
    before = stored(sqlite_app)
    wrong = web.patch(f"/api/v1/mailboxes/{box}", json={"password": "nope-nope"}, headers=api)
    assert wrong.status_code == 502 and "nope-nope" not in wrong.text
    assert stored(sqlite_app) == before

    smtp_body = {
        "host": "127.0.0.1",
        "port": smtp.smtps_port,
        "security": "ssl",
        "username": smtp.username,
        "password": "wrong-smtp-password",
    }
    put = web.put(f"/api/v1/mailboxes/{box}/smtp", json=smtp_body, headers=api)
    assert put.status_code == 502
    assert stored(sqlite_app) == before
    smtp_body["password"] = smtp.password
    assert web.put(f"/api/v1/mailboxes/{box}/smtp", json=smtp_body, headers=api).is_success
    with_smtp = stored(sqlite_app)
    smtp_body["password"] = "wrong-smtp-password"
    assert web.put(f"/api/v1/mailboxes/{box}/smtp", json=smtp_body, headers=api).status_code == 502
    assert stored(sqlite_app) == with_smtp


def test_dashboard_forms_save_nothing_that_did_not_log_in(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    user, password = imap_user
    csrf = sign_in(web, tenant.member)
    form = {
        "csrf_token": csrf,
        "protocol": "imap",
        "host": dovecot.host,
        "port": str(dovecot.imaps_port),
        "security": "ssl",
        "username": user,
        "password": "not-" + password,
        "allow_self_signed": "true",
    }
    seeded = stored(sqlite_app)
    refused = web.post("/mailboxes", data=form, headers=ORIGIN)
    assert refused.status_code == 422 and "Fix:" in refused.text
    assert stored(sqlite_app) == seeded

    form["password"] = password
    assert (
        web.post("/mailboxes", data=form, headers=ORIGIN, follow_redirects=False).status_code == 303
    )
    with sqlite_app.sessions() as session:
        box = session.scalars(select(Mailbox.id).where(Mailbox.username == user)).one()
    wait_for_syncs(box)
    before = stored(sqlite_app)
    wrong = web.post(
        f"/mailboxes/{box}/password", data={"csrf_token": csrf, "password": "nope"}, headers=ORIGIN
    )
    assert wrong.status_code == 422 and "Fix:" in wrong.text
    assert stored(sqlite_app) == before
    smtp_form = {
        "csrf_token": csrf,
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.smtps_port),
        "smtp_security": "ssl",
        "smtp_username": smtp.username,
        "smtp_password": "wrong-smtp-password",
    }
    wrong = web.post(f"/mailboxes/{box}/smtp", data=smtp_form, headers=ORIGIN)
    assert wrong.status_code == 422 and "wrong-smtp-password" not in wrong.text
    assert stored(sqlite_app) == before
