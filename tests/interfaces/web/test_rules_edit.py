"""Editing a rule in place from the Edit form of Admin → Rules (`rulebook.edit_rule`, as the
CLI and the API do): prefilled, tested, saved in place, errors shown."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.matching_models import MatchRule
from tests.conftest_web import Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}


def saved(app: App) -> list[tuple[str, int, str, dict[str, Any], str]]:
    with app.sessions() as session:
        return [
            (r.name, r.position, r.action, r.conditions, r.description)
            for r in session.scalars(select(MatchRule).order_by(MatchRule.position))
        ]


def test_page_edit_form_is_prefilled_tests_saves_in_place_and_shows_errors(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    for name, conds in (("first", {"from": "@noise.example"}), ("quotes", {"to": "@x.example"})):
        rule = {"csrf_token": csrf, "name": name, "action": "ignore"} | conds
        web.post("/admin/rules", data=rule, headers=ORIGIN)
    web.post(
        "/admin/rules",
        data={"csrf_token": csrf, "name": "quotes2", "action": "create-case"}
        | {"subject_contains": "Quote", "description": "quotes become cases"},
        headers=ORIGIN,
    )
    listing = web.get("/admin/rules").text
    assert 'href="/admin/rules/quotes2/edit#edit-rule"' in listing

    form = web.get("/admin/rules/quotes2/edit").text
    assert 'action="/admin/rules/quotes2/edit"' in form and csrf in form
    assert 'value="Quote"' in form and 'value="quotes become cases"' in form
    assert '<option value="create-case" selected>' in form
    before = saved(sqlite_app)

    edit = {"csrf_token": csrf, "action": "ignore", "has_attachment": "yes"}
    tried = web.post("/admin/rules/quotes2/edit", data=edit | {"do": "test"}, headers=ORIGIN)
    assert "1 of 3 messages match; nothing was changed." in tried.text
    assert "Contract" in tried.text.split('id="trial"')[1].split("</section>")[0]
    assert (
        web.post(  # no CSRF token: refused
            "/admin/rules/quotes2/edit", data={"action": "ignore"}, headers=ORIGIN
        ).status_code
        == 403
    )
    assert saved(sqlite_app) == before  # testing and refused posts changed nothing

    bad = web.post(
        "/admin/rules/quotes2/edit",
        data={"csrf_token": csrf, "action": "ignore", "subject_matches": "(["},
        headers=ORIGIN,
    )
    assert bad.status_code == 422 and 'class="error"' in bad.text
    assert "not a valid regular expression" in bad.text and "Fix:" in bad.text
    assert "Edit rule “quotes2”" in bad.text and 'value="(["' in bad.text  # kept to fix
    assert saved(sqlite_app) == before

    done = web.post(
        "/admin/rules/quotes2/edit",
        data=edit | {"do": "save", "description": "contracts", "name": "renamed"},
        headers=ORIGIN,
    )
    assert "Rule changed" in done.text
    assert saved(sqlite_app) == [
        before[0],
        before[1],
        ("quotes2", 3, "ignore", {"has_attachment": True}, "contracts"),
    ]
    sign_in(web, alpha.member)
    assert web.get("/admin/rules/quotes2/edit").status_code == 404
