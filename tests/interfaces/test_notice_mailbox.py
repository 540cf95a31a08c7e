"""The company's notice mailbox is chosen by an admin through `mailroom company notices`,
the admin settings page and `PATCH /api/v1/settings`, each calling the same service; only a
mailbox of the company with sending settings is accepted, and another company's mailbox
answers like one that does not exist."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.outbox.smtp_settings import set_smtp
from mailroom.services.notices import current_notice_mailbox_id
from tests.conftest_web import Tenant, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli


def can_send(app: App, tenant: Tenant) -> None:
    with transaction(app.sessions) as session:
        box = session.get(Mailbox, tenant.mailbox_id)
        assert box is not None
        set_smtp(session, app.secrets, mailbox=box, host=box.host, port=587)


def chosen(app: App, tenant: Tenant) -> int | None:
    with app.sessions() as session:
        return current_notice_mailbox_id(session=session, company_id=tenant.company_id)


def test_cli_chooses_and_clears_the_notice_mailbox(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    beta = seed_tenant(sqlite_app, "Beta")
    can_send(sqlite_app, beta)
    box = str(alpha.mailbox_id)
    assert run_cli(sqlite_app, monkeypatch, "company", "notices", "Alpha", box) == 1
    assert "no SMTP settings" in capsys.readouterr().err
    can_send(sqlite_app, alpha)
    assert run_cli(sqlite_app, monkeypatch, "company", "notices", "Alpha", box) == 0
    assert f"notices are sent from mailbox {box}" in capsys.readouterr().out
    assert chosen(sqlite_app, alpha) == alpha.mailbox_id
    other = str(beta.mailbox_id)
    assert run_cli(sqlite_app, monkeypatch, "company", "notices", "Alpha", other) == 1
    assert f"No mailbox {other} in this company" in capsys.readouterr().err
    assert run_cli(sqlite_app, monkeypatch, "company", "notices", "Alpha", "none") == 0
    assert chosen(sqlite_app, alpha) is None


def test_api_sets_the_notice_mailbox_for_admins_only_and_within_the_company(
    web: TestClient, sqlite_app: App
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    beta = seed_tenant(sqlite_app, "Beta")
    can_send(sqlite_app, alpha)
    can_send(sqlite_app, beta)
    admin = {"Authorization": f"Bearer {alpha.admin_token}"}
    member = {"Authorization": f"Bearer {alpha.member_token}"}
    body = {"notice_mailbox_id": alpha.mailbox_id}
    assert web.patch("/api/v1/settings", json=body, headers=member).status_code == 404
    assert chosen(sqlite_app, alpha) is None
    saved = web.patch("/api/v1/settings", json=body, headers=admin)
    assert saved.status_code == 200 and saved.json()["notice_mailbox_id"] == alpha.mailbox_id
    foreign = web.patch(
        "/api/v1/settings", json={"notice_mailbox_id": beta.mailbox_id}, headers=admin
    )
    assert foreign.status_code == 404 and "Beta" not in foreign.text
    assert chosen(sqlite_app, alpha) == alpha.mailbox_id
    cleared = web.patch("/api/v1/settings", json={"no_notice_mailbox": True}, headers=admin)
    assert cleared.json()["notice_mailbox_id"] is None


def test_settings_page_lists_only_mailboxes_that_can_send_and_saves_the_choice(
    web: TestClient, sqlite_app: App
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(web, alpha.admin)
    page = web.get("/admin/settings")
    assert f'<option value="{alpha.mailbox_id}"' not in page.text
    can_send(sqlite_app, alpha)
    assert f'<option value="{alpha.mailbox_id}"' in web.get("/admin/settings").text
    form = {
        "csrf_token": csrf,
        "visibility": "transparent",
        "retention_days": "365",
        "notice_mailbox": str(alpha.mailbox_id),
    }
    saved = web.post("/admin/settings", data=form, headers=ORIGIN, follow_redirects=False)
    assert saved.status_code == 303
    assert chosen(sqlite_app, alpha) == alpha.mailbox_id
    assert f'<option value="{alpha.mailbox_id}" selected' in web.get("/admin/settings").text
