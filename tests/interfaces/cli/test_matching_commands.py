"""The CLI forms of issue 5, exactly as acceptance checks use them: `why`, `blocklist`,
`records add --domain`, `rules add|list|test|order|remove`, and manual link/unlink."""

from __future__ import annotations

import json

import pytest

from mailroom.app import App
from mailroom.cli import main
from tests.helpers.matching_kit import ingest, mail, setup


@pytest.fixture
def cli(sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_why_json_lists_every_link_with_its_reason(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    code, out, _ = cli(
        "records",
        "add",
        "--company",
        "Acme",
        "--type",
        "account",
        "--name",
        "Client",
        "--domain",
        "client.example",
        "--domain",
        "client-group.example",
    )
    assert code == 0
    account = out.strip()
    code, out, _ = cli(
        "records",
        "add",
        "--company",
        "Acme",
        "--type",
        "contact",
        "--name",
        "Jo",
        "--email",
        "jo@client.example",
    )
    contact = out.strip()
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(message_id="w1@client.example", headers=[("Cc", "pat@eu.client-group.example")]),
    )
    code, out, _ = cli("why", "w1@client.example", "--company", "Acme", "--json")
    assert code == 0
    assert json.loads(out) == {
        "message_id": "w1@client.example",
        "links": [
            {"record": contact, "reason": "address:main"},
            {"record": account, "reason": "domain"},
        ],
        "skipped_by": None,
    }
    code, out, _ = cli("why", "<w1@client.example>")
    assert code == 0 and f"linked to {contact}: address:main" in out


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"sender": "ann@acme.example", "to": "bob@acme.example"}, "filter:internal"),
        ({"sender": "jo@blocked.example"}, "filter:blocklist"),
        ({"headers": [("List-Id", "<x.list.example>")]}, "filter:bulk"),
        ({"subject": "Confidential: pay"}, "filter:confidential"),
        ({"subject": "Unsubscribe me"}, "rule:no-unsubscribe"),
    ],
)
def test_why_json_names_the_filter_or_rule_that_skipped_it(
    sqlite_app: App, cli, kwargs, expected
) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    assert cli("blocklist", "add", "@blocked.example", "--company", "Acme")[0] == 0
    assert (
        cli(
            "rules",
            "add",
            "no-unsubscribe",
            "--company",
            "Acme",
            "--subject-contains",
            "unsubscribe",
            "--action",
            "ignore",
        )[0]
        == 0
    )
    ingest(sqlite_app, ids.ann_box, mail(message_id="s@x", **kwargs))
    code, out, _ = cli("why", "s@x", "--json")
    assert code == 0
    assert json.loads(out) == {"message_id": "s@x", "links": [], "skipped_by": expected}


def test_why_an_unknown_message_is_a_user_error_with_a_hint(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    setup(sqlite_app)
    code, _, err = cli("why", "nope@x", "--company", "Acme")
    assert code == 1 and "No stored message" in err and "Fix:" in err


def test_blocklist_add_list_remove(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    setup(sqlite_app)
    assert cli("blocklist", "add", "Spam@Vendor.example", "--company", "Acme")[0] == 0
    assert (
        cli("blocklist", "add", "@news.example", "--company", "Acme", "--user", "bob@acme.example")[
            0
        ]
        == 0
    )
    code, out, _ = cli("blocklist", "list", "--company", "Acme", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"entry": "@acme.example", "user": None, "builtin": True},
        {"entry": "@news.example", "user": "bob@acme.example", "builtin": False},
        {"entry": "spam@vendor.example", "user": None, "builtin": False},
    ]
    assert cli("blocklist", "add", "not an address", "--company", "Acme")[0] == 1
    assert cli("blocklist", "remove", "spam@vendor.example", "--company", "Acme")[0] == 0
    assert cli("blocklist", "remove", "spam@vendor.example", "--company", "Acme")[0] == 1
    code, out, _ = cli("blocklist", "list", "--company", "Acme", "--json")
    assert [e["entry"] for e in json.loads(out)] == ["@acme.example", "@news.example"]


def test_rules_commands_add_list_order_test_remove(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(to="leads@acme.example", message_id="l@x"))
    assert (
        cli(
            "rules",
            "add",
            "web-leads",
            "--company",
            "Acme",
            "--to",
            "leads@acme.example",
            "--action",
            "create-lead",
        )[0]
        == 0
    )
    assert (
        cli("rules", "add", "tag-it", "--company", "Acme", "--action", "tag", "--tag", "web")[0]
        == 0
    )
    assert cli("rules", "add", "bad", "--company", "Acme", "--action", "explode")[0] == 1
    assert cli("rules", "order", "tag-it", "--company", "Acme")[0] == 0
    code, out, _ = cli("rules", "list", "--company", "Acme", "--json")
    assert [(r["position"], r["name"]) for r in json.loads(out)] == [
        (1, "tag-it"),
        (2, "web-leads"),
    ]
    code, out, _ = cli("rules", "test", "web-leads", "--company", "Acme", "--last", "100")
    assert (
        code == 0
        and "would create a lead from jo@client.example" in out
        and "nothing was changed" in out
    )
    code, out, _ = cli("records", "list", "--company", "Acme", "--json")
    assert json.loads(out) == []
    assert cli("rules", "remove", "tag-it", "--company", "Acme")[0] == 0
    code, out, _ = cli("rules", "list", "--company", "Acme", "--json")
    assert [r["name"] for r in json.loads(out)] == ["web-leads"]


def test_unlink_and_link_by_hand_from_the_cli(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    _, out, _ = cli(
        "records",
        "add",
        "--company",
        "Acme",
        "--type",
        "contact",
        "--name",
        "Jo",
        "--email",
        "jo@client.example",
    )
    contact = out.strip()
    _, out, _ = cli("records", "add", "--company", "Acme", "--type", "case", "--name", "Pump")
    case = out.strip()
    ingest(sqlite_app, ids.ann_box, mail(message_id="h@x"))
    assert cli("unlink", "h@x", contact)[0] == 0
    assert cli("link", "h@x", case)[0] == 0
    code, out, _ = cli("why", "h@x", "--json")
    assert code == 0 and json.loads(out)["links"] == [{"record": case, "reason": "manual"}]
    code, out, _ = cli("why", "h@x")
    assert code == 0 and f"{contact}: link removed by hand" in out


def test_rules_settings_and_participation_commands(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    code, out, _ = cli(
        "rules",
        "settings",
        "--company",
        "Acme",
        "--opportunities",
        "recent",
        "--confidential",
        "Secret",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {
        "opportunity_policy": "recent",
        "log_bulk": False,
        "confidential_subjects": ["Secret"],
        "max_created_per_sender": 5,
    }
    assert cli("rules", "settings", "--company", "Acme", "--opportunities", "some")[0] == 1
    assert cli("rules", "participation", str(ids.bob_box), "--policy", "participated")[0] == 0
    assert cli("rules", "participation", str(ids.bob_box), "--policy", "maybe")[0] == 1
