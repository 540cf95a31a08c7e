"""`mailroom records edit | remove | merge | from-email` exactly as issue 13 writes them:
the same services as the API, so addresses added link their stored mail, removed ones take
their links away, deleting keeps the mail and merging moves it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.cli import main
from mailroom.db.models import Message, MessageLink, Record
from tests.helpers.matching_kit import ingest, mail, setup

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def linked(app: App, ref: str) -> set[int]:
    with app.sessions() as session:
        return set(
            session.scalars(
                select(MessageLink.message_id).where(
                    MessageLink.record_id == int(ref.split(":")[1])
                )
            )
        )


def add(cli: Cli, *args: str) -> str:
    code, out, err = cli("records", "add", "--company", "Acme", *args)
    assert code == 0, err
    return out.strip()


def test_edit_adds_and_removes_addresses_with_their_mail_and_sets_the_owner(
    sqlite_app: App, cli: Cli
) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="Jo <jo@client.example>", message_id="a@t"),
        mail(sender="Jo <jo@home.example>", message_id="b@t"),
        mail(sender="Jo <jo@home.example>", message_id="c@t"),
    )
    lead = add(cli, "--type", "lead", "--name", "Jo", "--email", "jo@client.example")
    assert len(linked(sqlite_app, lead)) == 1
    code, out, err = cli(
        "records",
        "edit",
        lead,
        "--name",
        "Jo Smith",
        "--add-email",
        "jo@home.example",
        "--owner",
        "ann@acme.example",
        "--field",
        "stage=qualified",
    )
    assert code == 0, err
    assert "2 message(s) linked" in out
    assert len(linked(sqlite_app, lead)) == 3
    code, out, err = cli("records", "edit", lead, "--remove-email", "jo@client.example", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["name"] == "Jo Smith" and answer["emails"] == ["jo@home.example"]
    assert answer["email_fields"][0]["field"] == "main"  # the remaining address is main now
    assert answer["owner"]["email"] == "ann@acme.example"
    assert answer["fields"] == {"stage": "qualified"}
    assert answer["mail"]["unlinked"] == 1
    assert len(linked(sqlite_app, lead)) == 2
    code, out, err = cli("records", "edit", lead, "--add-email", "JO@home.example", "--json")
    assert code == 0 and json.loads(out)["email_fields"] == [
        {"field": "main", "address": "jo@home.example"}
    ], "adding an address it holds changes nothing"
    code, _, err = cli("records", "edit", lead, "--owner", "nobody@else.example")
    assert code == 1 and "No user nobody@else.example" in err


def test_remove_keeps_the_mail_and_merge_moves_it(sqlite_app: App, cli: Cli) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="Jo <jo@client.example>", message_id="a@t"),
        mail(sender="Jo <jo@home.example>", message_id="b@t"),
    )
    first = add(cli, "--type", "contact", "--name", "Jo", "--email", "jo@client.example")
    second = add(cli, "--type", "contact", "--name", "Jo (home)", "--email", "jo@home.example")
    code, out, err = cli("records", "merge", first, "--from", second)
    assert code == 0, err
    assert f"{second} merged into {first}" in out
    assert len(linked(sqlite_app, first)) == 2
    code, out, _ = cli("records", "list", "--company", "Acme", "--json")
    rows = json.loads(out)
    assert [r["emails"] for r in rows if r["type"] == "contact"] == [
        ["jo@client.example", "jo@home.example"]
    ]
    code, out, err = cli("records", "remove", "jo@home.example")
    assert code == 0, err
    assert f"{first} removed" in out
    with sqlite_app.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(Record).where(Record.type == "contact"))
            == 0
        )
        assert session.scalar(select(func.count()).select_from(Message)) == 2
        assert session.scalar(select(func.count()).select_from(MessageLink)) == 0


def test_a_second_record_of_a_type_may_not_take_a_main_address_and_from_email_makes_a_lead(
    sqlite_app: App, cli: Cli
) -> None:
    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(sender="Pat <pat@new-client.example>", message_id="p@t"))
    first = add(cli, "--type", "lead", "--name", "Pat", "--email", "pat@new-client.example")
    code, _, err = cli(
        "records",
        "add",
        "--company",
        "Acme",
        "--type",
        "lead",
        "--name",
        "Pat 2",
        "--email",
        "pat@new-client.example",
    )
    assert code == 1 and first in err
    code, out, err = cli("records", "from-email", "p@t", "--type", "contact")
    assert code == 0, err
    contact = out.strip()
    assert contact.startswith("contact:")
    assert len(linked(sqlite_app, contact)) == 1
    with sqlite_app.sessions() as session:
        made = session.get(Record, int(contact.split(":")[1]))
        assert made is not None and made.name == "Pat" and made.account_id is not None
        account = session.get(Record, made.account_id)
        assert account is not None and [d.domain for d in account.domains] == ["new-client.example"]
