"""Editing a rule in place with `mailroom rules edit`, through the one service
`rulebook.edit_rule`: the name and the place in the order stay, the new conditions decide
what matches, bad input changes nothing and says how to fix it. The same through the
dashboard and the API: test_rules_edit.py in tests/interfaces/web/ and tests/interfaces/api/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cli import main
from mailroom.db.matching_models import MatchRule
from tests.conftest_web import Tenant

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
