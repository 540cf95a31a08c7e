"""`GET /api/v1/reports/activity`: the contract (`{"rows": [...]}`, CSV), the two-company
matrix and strict privacy. The counting itself is checked against the raw mail in
tests/integration/crm/test_activity_report.py."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.cli import main
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from tests.conftest_web import Tenant

URL = "/api/v1/reports/activity"
RANGE = {"from": "2026-01-05", "to": "2026-01-18"}  # the seeded mail is of Monday 5 January


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows(web: TestClient, token: str, by: str, **extra: str) -> list[dict[str, object]]:
    answer = web.get(URL, params={"by": by, **RANGE, **extra}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["rows"]
    found: list[dict[str, object]] = body["rows"]
    return found


def test_each_grouping_answers_rows_with_sent_received_and_total(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    token = alpha.admin_token
    assert rows(web, token, "week") == [
        {"week": "2026-01-05", "sent": 1, "received": 2, "total": 3},
        {"week": "2026-01-12", "sent": 0, "received": 0, "total": 0},
    ]
    by_type = {r["type"]: r["total"] for r in rows(web, token, "type")}
    # Jo is a contact; the account of his domain is not linked when his address matched.
    assert by_type == {"lead": 0, "contact": 3, "account": 0, "case": 0, "opportunity": 0}
    by_user = {r["email"]: (r["sent"], r["received"]) for r in rows(web, token, "user")}
    assert by_user == {alpha.admin: (1, 2), alpha.member: (0, 0)}
    assert set(rows(web, token, "user")[0]) == {
        "user_id", "email", "name", "sent", "received", "total"
    }  # fmt: skip
    assert rows(web, token, "stage") == []  # no opportunity has mail


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_carries_the_same_rows_as_json(
    web: TestClient, two_tenants: tuple[Tenant, Tenant], how: str
) -> None:
    alpha, _beta = two_tenants
    params = {"by": "user", **RANGE}
    headers = bearer(alpha.admin_token)
    if how == "format":
        params["format"] = "csv"
    else:
        headers["Accept"] = "text/csv"
    answer = web.get(URL, params=params, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(answer.text)))
    as_json = rows(web, alpha.admin_token, "user")
    assert [{k: str(v) for k, v in r.items()} for r in as_json] == table


def test_each_company_counts_only_its_own_users_and_mail(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    for tenant in (alpha, beta):
        for token in (tenant.admin_token, tenant.member_token):
            users = {r["email"] for r in rows(web, token, "user")}
            assert users == {tenant.admin, tenant.member}
            assert sum(int(str(r["total"])) for r in rows(web, token, "week")) == 3


def test_under_strict_privacy_a_member_counts_no_mail_they_may_not_see(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    member_view = {r["email"]: r["total"] for r in rows(web, alpha.member_token, "user")}
    assert member_view == {alpha.admin: 0, alpha.member: 0}
    admin_view = {r["email"]: r["total"] for r in rows(web, alpha.admin_token, "user")}
    assert admin_view == {alpha.admin: 3, alpha.member: 0}
    # Beta is transparent: its member counts all of Beta's logged mail.
    assert {r["email"]: r["total"] for r in rows(web, beta.member_token, "user")}[beta.admin] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"by": "month"},
        {"by": "week", "from": "2026-02-01", "to": "2026-01-01"},
        {"by": "week", "from": "2020-01-01", "to": "2026-01-01"},
        {"by": "week", "from": "yesterday"},
    ],
)
def test_bad_input_is_a_422_that_says_what_to_fix(
    web: TestClient, two_tenants: tuple[Tenant, Tenant], params: dict[str, str]
) -> None:
    alpha, _beta = two_tenants
    answer = web.get(URL, params=params, headers=bearer(alpha.admin_token))
    assert answer.status_code == 422
    assert answer.json()["message"]


def test_without_a_token_the_report_is_a_401(web: TestClient) -> None:
    assert web.get(URL).status_code == 401


def test_cli_report_gives_the_apis_rows_for_the_operator(
    web: TestClient,
    sqlite_app: App,
    two_tenants: tuple[Tenant, Tenant],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alpha, _beta = two_tenants
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")
    for by in ("user", "week", "type"):
        capsys.readouterr()
        args = ["report", "activity", "--company", "Alpha", "--by", by, "--json"]
        code = main(["--data-dir", str(sqlite_app.settings.data_dir), *args,
                     "--from", RANGE["from"], "--to", RANGE["to"]])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        assert json.loads(out) == {"rows": rows(web, alpha.admin_token, by)}
    capsys.readouterr()
    code = main(["--data-dir", str(sqlite_app.settings.data_dir), "report", "activity",
                 "--company", "Alpha", "--by", "month"])  # fmt: skip
    assert code != 0 and "by=user" in capsys.readouterr().err


def test_one_users_weeks_and_a_user_of_another_company_is_a_404(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    users = {r["email"]: r["user_id"] for r in rows(web, alpha.admin_token, "user")}
    admins = rows(web, alpha.admin_token, "week", user_id=str(users[alpha.admin]))
    assert [r["total"] for r in admins] == [3, 0]
    members = rows(web, alpha.admin_token, "week", user_id=str(users[alpha.member]))
    assert [r["total"] for r in members] == [0, 0]
    foreign = web.get(URL, params={"by": "week", "user_id": str(users[alpha.admin])},
                      headers=bearer(beta.admin_token))  # fmt: skip
    assert foreign.status_code == 404
