"""Nothing about another company leaks through adding users or looking up messages
(issue 11, item 4), through the CLI, the dashboard and the API.

- A company adds users only in its own domains; another domain needs the operator's
  `--confirm-domain` (the company's domains stay as they are). An address taken in another
  company is refused with words that name no company and do not say it exists: the same words as an
  address nobody has.
- A Message-ID the viewer may not see is answered exactly like one that does not exist,
  without Mailroom's internal id.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from tests.conftest_web import Tenant, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli


def test_cli_adds_users_only_in_the_companys_domains_and_never_reveals_another_company(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cli(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = run_cli(sqlite_app, monkeypatch, *args)
        out = capsys.readouterr()
        return code, out.out + out.err

    assert cli("company", "add", "Alpha", "--domain", "alpha.example")[0] == 0
    assert cli("company", "add", "Beta", "--domain", "beta.example")[0] == 0
    assert cli("user", "add", "bob@beta.example", "--company", "Beta")[0] == 0

    code, taken = cli("user", "add", "bob@beta.example", "--company", "Alpha")
    assert code == 1
    assert "Beta" not in taken and "exist" not in taken
    _, free = cli("user", "add", "nobody@beta.example", "--company", "Alpha")
    assert taken.replace("bob@", "nobody@") == free  # taken or not: the same answer

    # Confirming the domain does not reveal or take over the other company's user.
    code, confirmed = cli(
        "user", "add", "bob@beta.example", "--company", "Alpha", "--confirm-domain"
    )
    assert code == 1 and "Beta" not in confirmed and "exist" not in confirmed

    # An address in no one's domain: refused, then added with the operator's confirmation.
    assert cli("user", "add", "carol@freemail.example", "--company", "Alpha")[0] == 1
    assert (
        cli("user", "add", "carol@freemail.example", "--company", "Alpha", "--confirm-domain")[0]
        == 0
    )
    _, listed = cli("company", "list", "--json")
    assert "freemail.example" not in listed  # a shared domain does not become internal

    # The company's own users may be named as existing.
    code, again = cli(
        "user", "add", "carol@freemail.example", "--company", "Alpha", "--confirm-domain"
    )
    assert code == 1 and "already exists in Alpha" in again


def test_dashboard_admin_cannot_add_or_probe_another_companys_users(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha, beta = seed_tenant(sqlite_app, "Alpha"), seed_tenant(sqlite_app, "Beta")
    csrf = sign_in(web, alpha.admin)

    def add(email: str) -> tuple[int, str]:
        form = {"csrf_token": csrf, "email": email, "password": "a-long-password"}
        answer = web.post("/admin/users", data=form, headers=ORIGIN, follow_redirects=False)
        return answer.status_code, answer.text

    code, taken = add(beta.member)
    assert code == 422
    assert "Beta" not in taken and "already" not in taken
    _, free = add("nobody@beta.example")
    assert taken.replace(beta.member, "nobody@beta.example") == free  # the same page
    assert add("new@alpha.example")[0] == 303


def _message_answer(web: TestClient, token: str, ref: str) -> tuple[int, str]:
    """The status and the JSON text of looking `ref` up, with `ref` itself blanked out."""
    answer = web.get(f"/api/v1/messages/{ref}", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, json.dumps(answer.json()).replace(ref, "REF")


def test_api_a_message_id_the_viewer_may_not_see_answers_like_an_unknown_one(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha: Tenant = seed_tenant(sqlite_app, "Alpha")
    beta: Tenant = seed_tenant(sqlite_app, "Beta")
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    hidden = alpha.message_id_headers[0]  # Alpha's admin's mail: private from the member
    assert _message_answer(web, alpha.admin_token, hidden)[0] == 200

    cases = [
        (hidden, "no-such-message@client.example"),  # the member's company, not theirs
        (beta.message_id_headers[0], "no-such-message@client.example"),  # another company
        (str(alpha.message_ids[0]), "999999"),  # by Mailroom's id
    ]
    for ref, unknown in cases:
        code, answer = _message_answer(web, alpha.member_token, ref)
        assert (code, answer) == _message_answer(web, alpha.member_token, unknown)
        assert code == 404
