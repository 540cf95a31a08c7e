"""Running a rule on stored mail from `mailroom rules run`, `/api/v1/rules/{name}/stored`
and Admin → Rules, all through services.stored_rules: the preview count equals what the
run changes, a second run changes nothing, members and other companies get 404."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.cli import main
from tests.conftest_web import Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}
Cli = Callable[..., tuple[int, str]]
RULE = {"name": "no-contracts", "action": "ignore", "conditions": {"subject_contains": "contract"}}


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def timeline(web: TestClient, tenant: Tenant) -> list[str]:
    answer = web.get(
        f"/api/v1/records/contact/{tenant.contact_id}/timeline",
        headers=bearer(tenant.admin_token),
    )
    return sorted(item["subject"] for item in answer.json()["items"])


def test_api_preview_then_run_then_a_second_run_changes_nothing(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    assert web.post("/api/v1/rules", json=RULE, headers=bearer(alpha.admin_token)).is_success
    url = "/api/v1/rules/no-contracts/stored"
    preview = web.get(url, headers=bearer(alpha.admin_token)).json()
    assert (preview["affected"], preview["total"], preview["dry_run"]) == (1, 3, True)
    assert "Contract" in timeline(web, alpha)
    run = web.post(url, headers=bearer(alpha.admin_token))
    assert run.status_code == 200
    assert (run.json()["affected"], run.json()["state"]) == (1, "done")
    assert "Contract" not in timeline(web, alpha)
    assert len(timeline(web, alpha)) == 2
    assert web.get(url, headers=bearer(alpha.admin_token)).json()["affected"] == 0
    assert web.post(url, headers=bearer(alpha.admin_token)).json()["affected"] == 0
    status = web.get(f"{url}/status", headers=bearer(alpha.admin_token)).json()
    assert status["affected"] == 0 and status["state"] == "done"
    # Members and another company: as if the rule did not exist; Beta's mail is untouched.
    assert web.get(url, headers=bearer(alpha.member_token)).status_code == 404
    assert web.post(url, headers=bearer(alpha.member_token)).status_code == 404
    assert web.post(url, headers=bearer(beta.admin_token)).status_code == 404
    assert "Contract" in timeline(web, beta)


def test_cli_dry_run_counts_and_the_run_changes_as_many(
    cli: Cli, web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    code, out = cli("rules", "add", "no-quotes", "--company", "Alpha",
                    "--subject-contains", "quote", "--action", "ignore")  # fmt: skip
    assert code == 0, out
    code, out = cli("rules", "run", "no-quotes", "--company", "Alpha", "--dry-run", "--json")
    assert code == 0, out
    preview = json.loads(out)
    assert preview["affected"] == 2  # "Quote for Alpha" and "Re: Quote for Alpha"
    code, out = cli("rules", "run", "no-quotes", "--company", "Alpha")
    assert code == 0, out
    assert "changed 2 of 3 stored messages" in out
    assert timeline(web, alpha) == ["Contract"]
    code, out = cli("rules", "run", "no-quotes", "--company", "Alpha")
    assert "changed 0 of 3" in out
    code, out = cli("rules", "run", "nope", "--company", "Alpha")
    assert code != 0 and "nope" in out


def test_rules_page_previews_the_count_then_runs_on_stored_mail(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    assert web.post("/api/v1/rules", json=RULE, headers=bearer(alpha.admin_token)).is_success
    csrf = sign_in(web, alpha.admin)
    page = web.post(
        "/admin/rules/no-contracts/stored/preview", data={"csrf_token": csrf}, headers=ORIGIN
    )
    assert page.status_code == 200
    found = re.search(r'id="stored-preview-count">(\d+)<', page.text)
    assert found is not None and found.group(1) == "1"
    done = web.post(
        "/admin/rules/no-contracts/stored/run", data={"csrf_token": csrf}, headers=ORIGIN
    )
    assert done.status_code == 200
    assert re.search(r'id="stored-affected">1<', done.text)
    assert "Contract" not in timeline(web, alpha)
    refused = web.post("/admin/rules/no-contracts/stored/run", data={}, headers=ORIGIN)
    assert refused.status_code == 403  # no CSRF token: nothing runs
