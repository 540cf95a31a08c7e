"""Say what was filtered, on the pages and the API: the record page's note (skipped mail per
reason, mail hidden by strict privacy), the list with why, the offer to remove what a new
blocklist entry already logged, and the matching settings page — with members and other
companies answered 404 where the admin role is needed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.cli import main
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from tests.conftest_web import Tenant, sign_in
from tests.helpers.matching_kit import ingest, mail

ORIGIN = {"Origin": "http://testserver"}
BULK = [("List-Id", "<offers.client.example>"), ("Precedence", "bulk")]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _bulk_from_jo(app: App, tenant: Tenant) -> None:
    ingest(
        app,
        tenant.mailbox_id,
        mail(sender="jo@client-alpha.example", to=tenant.admin, subject="Spring offers",
             headers=BULK),
    )  # fmt: skip


def test_record_page_says_what_was_skipped_and_lists_why(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    _bulk_from_jo(sqlite_app, alpha)
    sign_in(web, alpha.member)
    base = f"/records/contact/{alpha.contact_id}"
    assert f'hx-get="{base}/filtered-note"' in web.get(base).text
    note = web.get(f"{base}/filtered-note").text
    assert "Not logged" in note and "1 bulk, list or automatic mail" in note
    listing = web.get(f"{base}/filtered").text
    assert "Spring offers" in listing and "bulk, list or automatic mail" in listing
    api = web.get(f"/api/v1/records/contact/{alpha.contact_id}/filtered",
                  headers=bearer(alpha.member_token))  # fmt: skip
    assert api.status_code == 200
    body = api.json()
    assert [(s["reason"], s["messages"]) for s in body["skipped"]] == [("filter:bulk", 1)]
    assert body["items"][0]["subject"] == "Spring offers" and body["hidden_by_privacy"] == 0
    other = web.get(f"/api/v1/records/contact/{alpha.contact_id}/filtered",
                    headers=bearer(beta.admin_token))  # fmt: skip
    assert other.status_code == 404


def test_strict_privacy_says_how_many_messages_are_hidden(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    sign_in(web, alpha.member)
    note = web.get(f"/records/contact/{alpha.contact_id}/filtered-note").text
    assert "3 messages hidden by privacy settings" in note
    sign_in(web, alpha.admin)
    assert (
        "hidden by privacy"
        not in web.get(f"/records/contact/{alpha.contact_id}/filtered-note").text
    )


def test_blocking_an_address_offers_to_remove_what_it_logged_with_the_count(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    csrf = sign_in(web, alpha.admin)
    entry = "jo@client-alpha.example"
    added = web.post("/admin/blocklist", data={"csrf_token": csrf, "entry": entry},
                     headers=ORIGIN)  # fmt: skip
    assert f"<td>{entry}</td>" in added.text and "/admin/blocklist/logged?entry=" in added.text
    offer = web.get("/admin/blocklist/logged", params={"entry": entry})
    assert 'id="blocked-logged-count">3<' in offer.text
    removed = web.post("/admin/blocklist/logged", data={"csrf_token": csrf, "entry": entry},
                       headers=ORIGIN)  # fmt: skip
    assert "Removed <strong>3</strong>" in removed.text
    timeline = web.get(f"/api/v1/records/contact/{alpha.contact_id}/timeline",
                       headers=bearer(alpha.admin_token))  # fmt: skip
    assert timeline.json()["items"] == []
    api = web.get("/api/v1/blocklist/logged", params={"entry": entry},
                  headers=bearer(alpha.admin_token))  # fmt: skip
    assert api.json() == {"entry": entry, "messages": 0, "removed": 0}
    # Beta's mail with its own Jo is untouched; members get 404.
    beta_jo = "jo@client-beta.example"
    assert web.get("/api/v1/blocklist/logged", params={"entry": beta_jo},
                   headers=bearer(beta.admin_token)).json()["messages"] == 3  # fmt: skip
    assert web.post("/api/v1/blocklist/logged", json={"entry": beta_jo},
                    headers=bearer(beta.member_token)).status_code == 404  # fmt: skip


def test_matching_settings_page_and_api_change_the_same_settings(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    csrf = sign_in(web, alpha.admin)
    assert "Confidential" in web.get("/admin/matching").text
    saved = web.post(
        "/admin/matching",
        data={"csrf_token": csrf, "opportunity_policy": "recent", "confidential":
              "Secret\nInternal only", "max_created_per_sender": "3", "log_bulk": "yes"},
        headers=ORIGIN,
    )  # fmt: skip
    assert saved.status_code == 200 and "Settings saved" in saved.text
    api = web.get("/api/v1/matching-settings", headers=bearer(alpha.admin_token)).json()
    assert api == {"opportunity_policy": "recent", "log_bulk": True,
                   "confidential_subjects": ["Secret", "Internal only"],
                   "max_created_per_sender": 3}  # fmt: skip
    bad = web.patch("/api/v1/matching-settings", json={"opportunity_policy": "some"},
                    headers=bearer(alpha.admin_token))  # fmt: skip
    assert bad.status_code == 422
    assert web.get("/api/v1/matching-settings",
                   headers=bearer(alpha.member_token)).status_code == 404  # fmt: skip
    sign_in(web, alpha.member)
    assert web.get("/admin/matching").status_code == 404


def test_cli_block_says_what_is_logged_and_remove_logged_takes_it_off(
    sqlite_app: App,
    web: TestClient,
    two_tenants: tuple[Tenant, Tenant],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alpha, _beta = two_tenants
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")

    def cli(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args])
        out, err = capsys.readouterr()
        return code, out + err

    code, out = cli("blocklist", "add", "@client-alpha.example", "--company", "Alpha")
    assert code == 0 and "3 message(s) already logged" in out and "remove-logged" in out
    code, out = cli("blocklist", "remove-logged", "@client-alpha.example", "--company",
                    "Alpha", "--dry-run")  # fmt: skip
    assert code == 0 and "3 logged message(s)" in out and "would be" in out
    code, out = cli("blocklist", "remove-logged", "@client-alpha.example", "--company", "Alpha")
    assert code == 0 and "3 logged message(s)" in out
    timeline = web.get(f"/api/v1/records/contact/{alpha.contact_id}/timeline",
                       headers=bearer(alpha.admin_token))  # fmt: skip
    assert timeline.json()["items"] == []
    code, out = cli("blocklist", "remove-logged", "@client-alpha.example", "--company", "Alpha")
    assert "0 logged message(s)" in out
