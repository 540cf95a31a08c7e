"""Editing a rule in place — `mailroom rules edit`, the Edit form of Admin → Rules and
`PATCH /api/v1/rules/{name}` — through the one service `rulebook.edit_rule`: the name and
the place in the order stay, the new conditions decide what matches, bad input changes
nothing and says how to fix it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.cli import main
from mailroom.db.matching_models import MatchRule
from tests.conftest_web import Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}
Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args])
        out, err = capsys.readouterr()
        return code, out + err

    return run


def saved(app: App) -> list[tuple[str, int, str, dict[str, Any], str]]:
    with app.sessions() as session:
        return [
            (r.name, r.position, r.action, r.conditions, r.description)
            for r in session.scalars(select(MatchRule).order_by(MatchRule.position))
        ]


def matching_subjects(cli: Cli, name: str) -> set[str]:
    code, out = cli("rules", "test", name, "--company", "Alpha", "--json")
    assert code == 0, out
    return {row["subject"] for row in json.loads(out) if row["matched"]}


def test_cli_edit_keeps_the_place_and_changes_what_matches(
    cli: Cli, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    for name, *conds in (
        ("first", "--from", "@noise.example"),
        ("quotes", "--subject-contains", "Quote"),
        ("last", "--to", "@nowhere.example"),
    ):
        code, out = cli("rules", "add", name, "--company", "Alpha", "--action", "ignore", *conds)
        assert code == 0, out
    assert matching_subjects(cli, "quotes") == {"Quote for Alpha", "Re: Quote for Alpha"}

    code, out = cli(
        "rules", "edit", "quotes", "--company", "Alpha", "--has-attachment",
        "--description", "contracts come with a PDF",
    )  # fmt: skip
    assert code == 0, out
    assert "Rule quotes changed (position 2)" in out
    assert saved(sqlite_app) == [
        ("first", 1, "ignore", {"from": "@noise.example"}, ""),
        ("quotes", 2, "ignore", {"has_attachment": True}, "contracts come with a PDF"),
        ("last", 3, "ignore", {"to": "@nowhere.example"}, ""),
    ]
    assert matching_subjects(cli, "quotes") == {"Contract"}  # the new condition decides

    code, out = cli(
        "rules", "edit", "quotes", "--company", "Alpha", "--action", "tag", "--tag", "vip"
    )
    assert code == 0, out  # the action changes; the conditions stay
    assert saved(sqlite_app)[1][2:4] == ("tag", {"has_attachment": True})


def test_cli_edit_refuses_bad_input_and_changes_nothing(
    cli: Cli, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    cli("rules", "add", "quotes", "--company", "Alpha", "--action", "ignore", "--to", "@x.example")
    before = saved(sqlite_app)
    code, out = cli("rules", "edit", "quotes", "--company", "Alpha", "--subject-matches", "([")
    assert code == 1 and "not a valid regular expression" in out and "escape" in out
    code, out = cli("rules", "edit", "quotes", "--company", "Alpha", "--action", "tag")
    assert code == 1 and "needs the tag to add" in out and "--tag TEXT" in out
    code, out = cli("rules", "edit", "nope", "--company", "Alpha", "--to", "@y.example")
    assert code == 1 and "No rule named 'nope'" in out and "rules list" in out
    code, out = cli("rules", "edit", "quotes", "--company", "Beta", "--to", "@y.example")
    assert code == 1 and "No rule named" in out  # another company's rules are not found
    code, out = cli(
        "rules", "edit", "quotes", "--company", "Alpha", "--every-message", "--to", "@y.example"
    )
    assert code == 1 and "--every-message" in out
    assert saved(sqlite_app) == before


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


BACKREFERENCE = r"(quote)\1"
RE2_REASON = "backreferences (\\1, (?P=name)) are not supported: rules run in RE2"


def test_a_backreference_is_refused_on_save_with_the_reason_through_each_interface(
    cli: Cli, web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    """RE2 runs rules in linear time (issue 11 item 13); what it cannot run is refused when
    the rule is saved, by the one check every interface calls, never during sync."""
    alpha, _ = two_tenants
    code, out = cli(
        "rules", "add", "quotes", "--company", "Alpha", "--action", "ignore",
        "--subject-matches", BACKREFERENCE,
    )  # fmt: skip
    assert code == 1 and RE2_REASON in out and "RE2 syntax" in out
    cli("rules", "add", "quotes", "--company", "Alpha", "--action", "ignore", "--to", "@x.example")
    code, out = cli(
        "rules", "edit", "quotes", "--company", "Alpha", "--subject-matches", BACKREFERENCE
    )
    assert code == 1 and RE2_REASON in out
    before = saved(sqlite_app)

    admin = {"Authorization": f"Bearer {alpha.admin_token}"}
    body = {"name": "api", "action": "ignore", "conditions": {"subject_matches": BACKREFERENCE}}
    answer = web.post("/api/v1/rules", json=body, headers=admin)
    assert answer.status_code == 422 and RE2_REASON in answer.json()["message"]
    assert "RE2 syntax" in answer.json()["hint"]
    answer = web.patch(
        "/api/v1/rules/quotes", json={"conditions": {"body_matches": "(?=x)y"}}, headers=admin
    )
    assert answer.status_code == 422 and "lookahead and lookbehind" in answer.json()["message"]

    csrf = sign_in(web, alpha.admin)
    page = web.post(
        "/admin/rules",
        data={"csrf_token": csrf, "name": "page", "action": "ignore"}
        | {"subject_matches": BACKREFERENCE},
        headers=ORIGIN,
    )
    assert page.status_code == 422 and "are not supported: rules run in RE2" in page.text
    page = web.post(
        "/admin/rules/quotes/edit",
        data={"csrf_token": csrf, "action": "ignore", "subject_matches": BACKREFERENCE},
        headers=ORIGIN,
    )
    assert page.status_code == 422 and "are not supported: rules run in RE2" in page.text
    assert saved(sqlite_app) == before  # nothing was saved or changed
