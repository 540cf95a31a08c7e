"""CSV import on both databases (SQLite and the real PostgreSQL): column mapping, idempotent
re-import, and broken rows reported by line. Email column naming: tests/unit/crm/."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.companies import add_company
from mailroom.crm.csv_import import import_csv
from mailroom.crm.records import list_records
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Record
from mailroom.errors import BadInput


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(text.encode(encoding))
    return path


def run_import(app: App, path: Path, record_type: str = "contact"):  # type: ignore[no-untyped-def]
    with transaction(app.sessions) as session:
        company = session.scalar(select(Company).where(Company.name == "Acme"))
        if company is None:
            company = add_company(session, name="Acme", domains=["acme.example"])
        return import_csv(session, company=company, path=path, record_type=record_type)


def records(app: App, record_type: str | None = None) -> list[Record]:
    with app.sessions() as session:
        return list_records(session, company_id=1, record_type=record_type)


def test_columns_map_to_name_account_phone_title_and_custom_fields(
    any_app: App, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "first_name,last_name,Email,Assistant Email,Company,Phone,Title,Favourite colour\n"
        "Jo,Bloggs,Jo@Client.example,pa@client.example,Client Ltd,+44 1,CTO,blue\n",
    )
    report = run_import(any_app, path)
    assert (report.created, report.errors) == (1, [])
    (contact,) = records(any_app, "contact")
    (account,) = records(any_app, "account")
    assert contact.name == "Jo Bloggs"
    assert [(e.field, e.address) for e in contact.emails] == [
        ("main", "jo@client.example"),
        ("assistant", "pa@client.example"),
    ]
    assert contact.account_id == account.id and account.name == "Client Ltd"
    assert contact.fields["phone"] == "+44 1" and contact.fields["title"] == "CTO"
    assert contact.fields["custom"] == {"Favourite colour": "blue"}


def test_reimport_updates_and_never_duplicates(any_app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "name,email,phone\nJo,jo@client.example,1\nSue,sue@client.example,2\n")
    assert run_import(any_app, path).created == 2
    again = run_import(any_app, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = write(tmp_path, "name,email,phone\nJo B,JO@client.example,9\n")
    report = run_import(any_app, changed)
    assert (report.created, report.updated) == (0, 1)
    contacts = records(any_app, "contact")
    assert len(contacts) == 2
    jo = next(r for r in contacts if r.emails[0].address == "jo@client.example")
    assert jo.name == "Jo B" and jo.fields["phone"] == "9"


def test_broken_rows_are_reported_by_line_and_the_rest_imported(
    any_app: App, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "name,email,notes\n"
        "Good One,one@client.example,ok\n"
        "Bad Address,not-an-address,x\n"
        'Multi,multi@client.example,"line one\nline two"\n'
        "Too,many@client.example,values,extra\n"
        ",,\n"
        ",,just a note\n"
        "Good Two,two@client.example,ok\n",
    )
    report = run_import(any_app, path)
    assert report.created == 3
    lines = [line for line, _ in report.errors]
    assert lines == [3, 6, 8]
    reasons = dict(report.errors)
    assert "not-an-address" in reasons[3]
    assert "4 values" in reasons[6]
    assert "neither an email address nor a name" in reasons[8]


def test_semicolons_and_excel_cp1252_are_read(any_app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "Name;Email\nRené Müller;rene@client.example\n", encoding="cp1252")
    report = run_import(any_app, path, "lead")
    assert report.created == 1 and report.encoding == "cp1252"
    (lead,) = records(any_app, "lead")
    assert lead.name == "René Müller"


def test_accounts_import_domains_from_a_website_column(any_app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "name,website\nClient Ltd,https://www.Client.example/about\n")
    run_import(any_app, path, "account")
    (account,) = records(any_app, "account")
    assert [d.domain for d in account.domains] == ["client.example"]
    assert run_import(any_app, path, "account").unchanged == 1


def test_empty_or_headerless_file_is_a_clear_error(any_app: App, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="empty"):
        run_import(any_app, write(tmp_path, ""))


def test_import_runs_in_one_savepoint_per_row(any_app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "name,email\nA,a@client.example\nB,bad\nC,c@client.example\n")
    run_import(any_app, path)
    with any_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Record)) == 2


def test_an_unterminated_quote_is_one_rejected_row_and_the_lines_after_it_are_imported(
    any_app: App, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "name,email,notes\n"
        "Good One,one@client.example,ok\n"
        'Broken,broken@client.example,"never closed\n'
        "Good Two,two@client.example,ok\n"
        "Good Three,three@client.example,ok\n",
    )
    report = run_import(any_app, path)
    assert report.errors == [(3, "a quote opened on this line is never closed")]
    assert report.created == 3
    assert {r.name for r in records(any_app, "contact")} == {"Good One", "Good Two", "Good Three"}


def test_a_row_with_fewer_cells_than_the_header_is_rejected(any_app: App, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name,email,phone\nJo,jo@client.example,1\nsue@client.example,2\nAl,al@client.example,3\n",
    )
    report = run_import(any_app, path)
    assert report.errors == [(3, "it has 2 values but the header has 3 columns")]
    assert {r.name for r in records(any_app, "contact")} == {"Jo", "Al"}


def test_a_nul_byte_in_a_cell_is_a_rejected_row_on_both_databases(
    any_app: App, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "name,email,notes\n"
        "Jo,jo@client.example,ok\n"
        "Sue,sue@client.example,bad\0note\n"
        "\0Al,al@client.example,ok\n"
        "Bo,bo@client.example,ok\n",
    )
    report = run_import(any_app, path)
    assert report.errors == [(3, "'notes' holds a NUL byte"), (4, "'name' holds a NUL byte")]
    assert {r.name for r in records(any_app, "contact")} == {"Jo", "Bo"}


def test_cli_reports_each_rejected_row_as_file_line_reason(
    sqlite_app: App,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mailroom.cli import main

    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")
    with transaction(sqlite_app.sessions) as session:
        add_company(session, name="Acme", domains=["acme.example"])
    path = write(
        tmp_path,
        'name,email\nJo,jo@client.example\nSue,"sue@\nBo\nAl,al@client.example\0\n',
    )
    args = ["--data-dir", str(sqlite_app.settings.data_dir), "records", "import", str(path)]
    code = main([*args, "--company", "Acme", "--type", "contact"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "1 created, 0 updated, 0 unchanged, 3 rejected" in out
    assert "people.csv: line 3: a quote opened on this line is never closed" in err
    assert "people.csv: line 4: it has 1 values but the header has 2 columns" in err
    assert "people.csv: line 5: 'email' holds a NUL byte" in err
