"""Admin pages and API: rules (add, test on recent mail, reorder, remove), blocklist, the
BCC drop address and settings — each through the same services as the CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.db.matching_models import MatchRule
from mailroom.db.models import MessageLink, Record
from tests.conftest_web import Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}


def test_rules_page_adds_tests_reorders_and_removes(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    rule = {"csrf_token": csrf, "name": "quotes", "action": "create-case"}
    rule |= {"subject_contains": "Quote", "description": "quotes become cases"}
    with sqlite_app.sessions() as session:
        links_before = session.scalar(select(func.count()).select_from(MessageLink))
        records_before = session.scalar(select(func.count()).select_from(Record))
    tried = web.post("/admin/rules", data=rule | {"do": "test"}, headers=ORIGIN)
    assert tried.status_code == 200
    assert "2 of 3 messages match; nothing was changed." in tried.text
    assert "would create a case from jo@client-alpha.example" in tried.text
    with sqlite_app.sessions() as session:  # testing saved nothing and changed no mail
        assert session.scalars(select(MatchRule)).all() == []
        assert session.scalar(select(func.count()).select_from(MessageLink)) == links_before
        assert session.scalar(select(func.count()).select_from(Record)) == records_before
    added = web.post("/admin/rules", data=rule | {"do": "add"}, headers=ORIGIN)
    assert "Rule added." in added.text and "quotes become cases" in added.text
    web.post(
        "/admin/rules",
        data={"csrf_token": csrf, "name": "noise", "action": "ignore", "from": "@noise.example"},
        headers=ORIGIN,
    )
    saved = web.post("/admin/rules/quotes/test", data={"csrf_token": csrf}, headers=ORIGIN)
    assert "2 of 3 messages match" in saved.text
    web.post("/admin/rules/noise/move", data={"csrf_token": csrf, "to": "up"}, headers=ORIGIN)
    with sqlite_app.sessions() as session:
        order = session.scalars(select(MatchRule.name).order_by(MatchRule.position)).all()
    assert order == ["noise", "quotes"]
    broken = web.post(
        "/admin/rules",
        data={"csrf_token": csrf, "name": "bad", "action": "ignore", "subject_matches": "(["},
        headers=ORIGIN,
    )
    assert broken.status_code == 422 and 'class="error"' in broken.text
    web.post("/admin/rules/noise/remove", data={"csrf_token": csrf}, headers=ORIGIN)
    with sqlite_app.sessions() as session:
        assert session.scalars(select(MatchRule.name)).all() == ["quotes"]


def test_blocklist_and_drop_address_pages(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    page = web.get("/admin/blocklist").text
    assert "@alpha.example" in page and "built in" in page
    added = web.post(
        "/admin/blocklist",
        data={"csrf_token": csrf, "entry": "@Shop.Example", "user": alpha.member},
        headers=ORIGIN,
    )
    assert "<td>@shop.example</td>" in added.text and f"{alpha.member}'s mailboxes" in added.text
    again = web.post(
        "/admin/blocklist",
        data={"csrf_token": csrf, "entry": "@shop.example", "user": alpha.member},
        headers=ORIGIN,
    )
    assert again.status_code == 422 and "already on the blocklist" in again.text
    own = web.post(
        "/admin/blocklist/remove",
        data={"csrf_token": csrf, "entry": "@alpha.example"},
        headers=ORIGIN,
    )
    assert own.status_code == 422 and "stays blocked" in own.text
    web.post(
        "/admin/blocklist/remove",
        data={"csrf_token": csrf, "entry": "@shop.example", "user": alpha.member},
        headers=ORIGIN,
    )
    assert "<td>@shop.example</td>" not in web.get("/admin/blocklist").text
    first = web.get("/admin/dropbox").text
    address = first.split('id="drop-address">')[1].split("<")[0]
    assert (
        address.startswith("log+")
        and address == web.get("/admin/dropbox").text.split('id="drop-address">')[1].split("<")[0]
    )
    rotated = web.post(
        "/admin/dropbox", data={"csrf_token": csrf, "rotate": "true"}, headers=ORIGIN
    )
    assert address not in rotated.text and "no longer accepts mail" in rotated.text
    quarantined = web.post(
        "/admin/dropbox",
        data={"csrf_token": csrf, "unknown_senders": "quarantine"},
        headers=ORIGIN,
    )
    assert 'value="quarantine" selected' in quarantined.text


def test_admin_api_rules_blocklist_settings_and_dropbox(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    admin = {"Authorization": f"Bearer {alpha.admin_token}"}
    member = {"Authorization": f"Bearer {alpha.member_token}"}
    rule = {"name": "web-leads", "action": "create-lead", "conditions": {"to": "leads@x.test"}}
    assert web.post("/api/v1/rules", json=rule, headers=member).status_code == 404
    made = web.post("/api/v1/rules", json=rule, headers=admin)
    assert made.status_code == 201 and made.json()["position"] == 1
    assert web.post("/api/v1/rules", json=rule, headers=admin).status_code in (409, 422)
    bad = web.post("/api/v1/rules", json=rule | {"name": "x", "action": "explode"}, headers=admin)
    assert bad.status_code == 422 and "explode" in bad.json()["message"]
    web.post("/api/v1/rules", json=rule | {"name": "second", "action": "ignore"}, headers=admin)
    order = web.put("/api/v1/rules/order", json={"names": ["second"]}, headers=admin).json()
    assert [r["name"] for r in order["items"]] == ["second", "web-leads"]
    trial = web.get("/api/v1/rules/web-leads/test?last=10", headers=admin).json()
    assert len(trial["items"]) == 3 and not any(r["matched"] for r in trial["items"])
    assert web.delete("/api/v1/rules/second", headers=admin).status_code == 204
    assert [r["name"] for r in web.get("/api/v1/rules", headers=admin).json()["items"]] == [
        "web-leads"
    ]
    beta_auth = {"Authorization": f"Bearer {beta.admin_token}"}
    assert web.get("/api/v1/rules", headers=beta_auth).json()["items"] == []
    assert web.delete("/api/v1/rules/web-leads", headers=beta_auth).status_code == 404

    blocked = web.post("/api/v1/blocklist", json={"entry": "spam@x.test"}, headers=admin)
    assert blocked.status_code == 201
    entries = web.get("/api/v1/blocklist", headers=admin).json()["items"]
    assert {"entry": "spam@x.test", "user": None, "builtin": False} in entries
    assert web.get("/api/v1/blocklist", headers=beta_auth).json()["items"][0]["builtin"]
    assert web.delete("/api/v1/blocklist?entry=spam@x.test", headers=beta_auth).status_code == 404
    assert web.delete("/api/v1/blocklist?entry=spam@x.test", headers=admin).status_code == 204

    changed = web.patch(
        "/api/v1/settings", json={"visibility": "strict", "mailbox_limit": 3}, headers=admin
    ).json()
    assert changed["visibility"] == "strict" and changed["mailbox_limit"] == 3
    assert web.get("/api/v1/settings", headers=beta_auth).json()["visibility"] == "transparent"
    assert web.patch("/api/v1/settings", json={"color": 1}, headers=admin).status_code == 422

    drop = web.get("/api/v1/dropbox", headers=admin).json()
    rotated = web.post("/api/v1/dropbox", json={"rotate": True}, headers=admin).json()
    assert drop["address"] != rotated["address"] and rotated["address"].startswith("log+")
    assert web.get("/api/v1/dropbox", headers=beta_auth).json()["address"] != rotated["address"]
