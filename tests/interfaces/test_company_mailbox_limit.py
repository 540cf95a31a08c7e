"""The company's mailbox limit: set and cleared by `mailroom company limit`, the admin
settings page and the API; connecting the N+1th mailbox is refused with a clear message
on every interface (CLI, API, dashboard), against the real Dovecot."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.db.models import Company, Mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_web import seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli, wait_for_syncs

REFUSAL = "reached its limit of"


def mailbox_count(app: App) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(Mailbox)) or 0


def company_limit(app: App, name: str) -> int | None:
    with app.sessions() as session:
        return session.scalars(select(Company.mailbox_limit).where(Company.name == name)).one()


def test_company_limit_command_sets_and_clears_and_the_cli_add_obeys_it(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, password = imap_user

    def cli(*args: str, stdin: str = "") -> int:
        return run_cli(sqlite_app, monkeypatch, *args, stdin=stdin)

    assert cli("company", "add", "Acme", "--domain", "acme.example") == 0
    assert cli("user", "add", "ann@acme.example", "--company", "Acme") == 0
    capsys.readouterr()
    assert cli("company", "limit", "Acme", "1") == 0
    assert "Company 'Acme': at most 1 mailboxes." in capsys.readouterr().out
    assert company_limit(sqlite_app, "Acme") == 1

    add = ("mailbox", "add", "--user", "ann@acme.example", "--host", dovecot.host)
    add += ("--port", str(dovecot.imaps_port), "--username", user)
    add += ("--password-stdin", "--allow-self-signed")
    assert cli(*add, stdin=password + "\n") == 0
    first = capsys.readouterr().out.strip()
    assert cli(*add, stdin=password + "\n") == 1
    err = capsys.readouterr().err
    assert f"{REFUSAL} 1 mailboxes" in err and "company limit" in err
    assert mailbox_count(sqlite_app) == 1

    # Disconnecting frees the slot.
    assert cli("mailbox", "disconnect", first, "--keep-mail") == 0
    assert f"Mailbox {first} disconnected" in capsys.readouterr().out
    assert cli(*add, stdin=password + "\n") == 0
    assert mailbox_count(sqlite_app) == 1

    assert cli("company", "limit", "Acme", "none") == 0
    assert "Company 'Acme': no mailbox limit." in capsys.readouterr().out
    assert company_limit(sqlite_app, "Acme") is None
    assert cli(*add, stdin=password + "\n") == 0
    assert mailbox_count(sqlite_app) == 2

    assert cli("company", "limit", "Acme", "lots") == 1
    assert cli("company", "limit", "Nobody", "3") == 1
    assert company_limit(sqlite_app, "Acme") is None


def test_api_refuses_the_mailbox_over_the_limit(
    web: TestClient, sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")  # its admin has one mailbox
    user, password = imap_user
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    member = {"Authorization": f"Bearer {tenant.member_token}"}
    limited = web.patch("/api/v1/settings", json={"mailbox_limit": 2}, headers=admin)
    assert limited.json()["mailbox_limit"] == 2
    body = {
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "username": user,
        "password": password,
        "allow_self_signed": True,
    }
    made = web.post("/api/v1/mailboxes", json=body, headers=member)
    assert made.status_code == 201, made.text
    wait_for_syncs(made.json()["id"])
    refused = web.post("/api/v1/mailboxes", json=body, headers=member)
    assert refused.status_code == 422 and f"{REFUSAL} 2 mailboxes" in refused.json()["message"]
    assert mailbox_count(sqlite_app) == 2
    cleared = web.patch("/api/v1/settings", json={"no_mailbox_limit": True}, headers=admin)
    assert cleared.json()["mailbox_limit"] is None


def test_dashboard_refuses_the_mailbox_over_the_limit_the_admin_set(
    web: TestClient, sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")  # its admin has one mailbox
    user, password = imap_user
    csrf = sign_in(web, tenant.admin)
    settings = {"visibility": "transparent", "retention_days": "365", "mailbox_limit": "1"}
    saved = web.post(
        "/admin/settings",
        data={"csrf_token": csrf, **settings},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert company_limit(sqlite_app, "Alpha") == 1
    form = {
        "csrf_token": csrf,
        "protocol": "imap",
        "host": dovecot.host,
        "port": str(dovecot.imaps_port),
        "security": "ssl",
        "username": user,
        "password": password,
        "allow_self_signed": "true",
    }
    refused = web.post("/mailboxes", data=form, headers=ORIGIN)
    assert refused.status_code == 422 and f"{REFUSAL} 1 mailboxes" in refused.text
    assert mailbox_count(sqlite_app) == 1
