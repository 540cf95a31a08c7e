"""Editing a rule in place with `PATCH /api/v1/rules/{name}` (`rulebook.edit_rule`, as the CLI
and the dashboard do): bad input changes nothing and says how to fix it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.matching_models import MatchRule
from tests.conftest_web import Tenant


def saved(app: App) -> list[tuple[str, int, str, dict[str, Any], str]]:
    with app.sessions() as session:
        return [
            (r.name, r.position, r.action, r.conditions, r.description)
            for r in session.scalars(select(MatchRule).order_by(MatchRule.position))
        ]


def test_api_patch_edits_in_place_and_refuses_bad_input_with_a_fix(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    admin = {"Authorization": f"Bearer {alpha.admin_token}"}
    for name, conds in (("quotes", {"subject_contains": "Quote"}), ("last", {"to": "@y.test"})):
        body = {"name": name, "action": "create-case", "conditions": conds}
        assert web.post("/api/v1/rules", json=body, headers=admin).status_code == 201
    changed = web.patch(
        "/api/v1/rules/quotes",
        json={"conditions": {"subject_contains": "Contract"}, "description": "contracts"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    got = changed.json()
    assert (got["name"], got["position"], got["action"]) == ("quotes", 1, "create-case")
    assert got["conditions"] == {"subject_contains": "Contract"}
    trial = web.get("/api/v1/rules/quotes/test", headers=admin).json()["items"]
    assert {r["subject"] for r in trial if r["matched"]} == {"Contract"}

    before = saved(sqlite_app)
    for body, words in (
        ({"conditions": {"from": "not an address"}}, "not an address"),
        ({"conditions": {"colour": "red"}}, "Unknown condition"),
        ({"action": "explode"}, "explode"),
        ({"action": "tag"}, "needs the tag to add"),
        ({"name": "renamed"}, "name"),
        ({}, "Nothing to change"),
    ):
        answer = web.patch("/api/v1/rules/quotes", json=body, headers=admin)
        assert answer.status_code == 422, (body, answer.text)
        assert words in answer.json()["message"] and answer.json()["hint"], answer.json()
    tagged = web.patch(
        "/api/v1/rules/quotes", json={"action": "tag", "params": {"tag": "vip"}}, headers=admin
    )
    assert tagged.json()["params"] == {"tag": "vip"} and tagged.json()["position"] == 1
    assert saved(sqlite_app)[1:] == before[1:]

    member = {"Authorization": f"Bearer {alpha.member_token}"}
    beta_admin = {"Authorization": f"Bearer {beta.admin_token}"}
    for headers in (member, beta_admin):
        answer = web.patch("/api/v1/rules/quotes", json={"description": "x"}, headers=headers)
        assert answer.status_code == 404
    assert web.patch("/api/v1/rules/nope", json={}, headers=admin).status_code == 404
    assert saved(sqlite_app)[0][4] == "contracts"
