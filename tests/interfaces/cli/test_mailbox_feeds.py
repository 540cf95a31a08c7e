"""Issue 13 item 11: a mailbox's `feeds` setting limits the record types its mail links
to, and `mailroom why` names the setting for every link it refused."""

from __future__ import annotations

import json

import pytest

from mailroom.app import App
from mailroom.cli import main
from tests.helpers.matching_kit import ingest, mail, setup

CC = [("Cc", "pat@client.example")]  # linked by the account's domain only


@pytest.fixture
def cli(sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _records(cli) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    code, out, _ = cli(
        "records", "add", "--company", "Acme", "--type", "account", "--name", "Client",
        "--domain", "client.example",
    )  # fmt: skip
    assert code == 0
    account = out.strip()
    code, out, _ = cli(
        "records", "add", "--company", "Acme", "--type", "contact", "--name", "Jo",
        "--email", "jo@client.example",
    )  # fmt: skip
    assert code == 0
    return account, out.strip()


def test_a_mailbox_that_feeds_contacts_only_links_no_account_and_why_names_the_setting(
    sqlite_app: App, cli
) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    account, contact = _records(cli)
    code, out, _ = cli("mailbox", "edit", str(ids.ann_box), "--feeds", "contact,lead")
    assert code == 0 and "lead, contact" in out
    ingest(sqlite_app, ids.ann_box, mail(message_id="f1@client.example", headers=CC))
    code, out, _ = cli("why", "f1@client.example", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["links"] == [{"record": contact, "reason": "address:main"}]
    assert [item["record"] for item in answer["not_linked"]] == [account]
    assert answer["not_linked"][0]["reason"] == "feeds"
    code, out, _ = cli("why", "f1@client.example")
    assert f"not linked to {account}: mailbox {ids.ann_box}" in out
    assert "feeds only lead, contact" in out and "--feeds all" in out


def test_the_default_feeds_every_type_and_all_restores_it(sqlite_app: App, cli) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    account, contact = _records(cli)
    ingest(
        sqlite_app,
        ids.bob_box,
        mail(message_id="f2@client.example", to="bob@acme.example", headers=CC),
    )
    _, out, _ = cli("why", "f2@client.example", "--json")
    assert {link["record"] for link in json.loads(out)["links"]} == {account, contact}
    assert "not_linked" not in json.loads(out)
    assert cli("mailbox", "edit", str(ids.bob_box), "--feeds", "case")[0] == 0
    assert cli("mailbox", "edit", str(ids.bob_box), "--feeds", "all")[0] == 0
    ingest(
        sqlite_app,
        ids.bob_box,
        mail(message_id="f3@client.example", to="bob@acme.example", headers=CC),
    )
    _, out, _ = cli("why", "f3@client.example", "--json")
    assert {link["record"] for link in json.loads(out)["links"]} == {account, contact}


def test_an_unknown_record_type_in_feeds_is_refused_with_the_known_ones(
    sqlite_app: App, cli
) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    code, _, err = cli("mailbox", "edit", str(ids.ann_box), "--feeds", "lead,client")
    assert code != 0
    assert "'client'" in err and "lead,contact,account,case,opportunity" in err.replace(", ", ",")


def test_a_record_added_later_links_stored_mail_only_as_its_mailboxes_feeds_allow(
    sqlite_app: App, cli
) -> None:  # type: ignore[no-untyped-def]
    ids = setup(sqlite_app)
    assert cli("mailbox", "edit", str(ids.ann_box), "--feeds", "lead")[0] == 0
    ingest(
        sqlite_app, ids.ann_box, mail(message_id="late@newco.example", sender="pat@newco.example")
    )
    ingest(
        sqlite_app,
        ids.bob_box,
        mail(message_id="bob@newco.example", sender="pat@newco.example", to="bob@acme.example"),
    )
    code, out, _ = cli(
        "records", "add", "--company", "Acme", "--type", "contact", "--name", "Pat",
        "--email", "pat@newco.example",
    )  # fmt: skip
    assert code == 0
    contact = out.strip()
    _, out, _ = cli("why", "late@newco.example", "--json")
    answer = json.loads(out)
    assert answer["links"] == [] and answer["not_linked"][0]["record"] == contact
    _, out, _ = cli("why", "bob@newco.example", "--json")  # Bob's mailbox feeds everything
    assert json.loads(out)["links"] == [{"record": contact, "reason": "address:main"}]
