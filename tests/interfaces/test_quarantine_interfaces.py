"""The quarantine (issue 11, item 8) on every interface, through services/quarantine.py:
`mailroom mailbox quarantine` and `mailbox errors`, `/api/v1/mailboxes/{id}/quarantine…`,
the error-log page's list with Retry and Dismiss, and the dashboard's count. Same access
as the mailbox: its owner and the company's admins; another company gets 404.

The rows are made by the sync's own recorder (sync/quarantine.py); the sync itself is
tested against the hostile server in tests/integration/sync/test_quarantine.py.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import Unreadable
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, QuarantinedMessage, User
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.quarantine import QUARANTINE_AFTER, Place, record_failures
from tests.conftest_web import Tenant, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli
from tests.interfaces.api.test_visibility import bearer

WHY = "the FETCH answer had no message in it: * 1 FETCH (UID 41 BODY[] NIL)"


def quarantine(
    app: App, mailbox_id: int, uid: int = 41, *, attempts: int = QUARANTINE_AFTER
) -> int:
    """Record enough failed fetches of `uid` in the mailbox's INBOX to quarantine it."""
    place = Place(mailbox_id, "INBOX", 7)
    for _ in range(QUARANTINE_AFTER):
        with transaction(app.sessions) as session:
            rows = record_failures(session, place, [Unreadable(uid, WHY)], sizes={uid: 900})
    return rows[0].id


def member_mailbox(app: App, tenant: Tenant) -> int:
    with transaction(app.sessions) as session:
        member = session.scalar(select(User).where(User.email == tenant.member))
        assert member is not None
        box = add_mailbox(
            session, app.secrets, user=member, host="imap.test", port=993, password="pw-1"
        )
        return box.id


def state_of(app: App, qid: int) -> str:
    with app.sessions() as session:
        row = session.get(QuarantinedMessage, qid)
        assert row is not None
        return row.state


def test_api_lists_retries_and_dismisses_for_the_owner_and_admins_only(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha, beta = seed_tenant(sqlite_app, "Alpha"), seed_tenant(sqlite_app, "Beta")
    box = member_mailbox(sqlite_app, alpha)
    qid = quarantine(sqlite_app, box)
    base = f"/api/v1/mailboxes/{box}/quarantine"

    for token in (alpha.member_token, alpha.admin_token):  # its owner, the company's admin
        listed = web.get(base, headers=bearer(token))
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert (item["id"], item["uid"], item["state"]) == (qid, 41, "quarantined")
        assert item["attempts"] == QUARANTINE_AFTER and item["last_error"] == WHY
    mailbox = web.get(f"/api/v1/mailboxes/{box}", headers=bearer(alpha.member_token)).json()
    assert mailbox["quarantined"] == 1  # the dashboard's count

    for path in ("", f"/{qid}/retry", f"/{qid}/dismiss"):  # another company: as if absent
        answer = (web.get if not path else web.post)(base + path, headers=bearer(beta.admin_token))
        assert answer.status_code == 404, answer.text
        assert "Alpha" not in answer.text
    assert state_of(sqlite_app, qid) == "quarantined"

    retried = web.post(f"{base}/{qid}/retry", headers=bearer(alpha.admin_token))
    assert retried.status_code == 200 and retried.json()["state"] == "retrying"
    with sqlite_app.sessions() as session:
        row = session.get(Mailbox, box)
        assert row is not None and row.sync_requested_at is not None  # synced soon
    dismissed = web.post(f"{base}/{qid}/dismiss", headers=bearer(alpha.member_token))
    assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
    assert web.get(base, headers=bearer(alpha.member_token)).json()["items"][0]["state"] == (
        "dismissed"
    )  # still listed
    other = web.post(f"{base}/999/retry", headers=bearer(alpha.member_token))
    assert other.status_code == 404


def test_a_member_cannot_act_on_a_colleagues_quarantine(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    qid = quarantine(sqlite_app, alpha.mailbox_id)  # the admin's own mailbox
    base = f"/api/v1/mailboxes/{alpha.mailbox_id}/quarantine"
    assert web.get(base, headers=bearer(alpha.member_token)).status_code == 404
    assert web.post(f"{base}/{qid}/dismiss", headers=bearer(alpha.member_token)).status_code == 404
    assert state_of(sqlite_app, qid) == "quarantined"


def test_cli_quarantine_lists_retries_dismisses_and_errors_shows_it(
    sqlite_app: App,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fast_hashing: None,
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    qid = quarantine(sqlite_app, alpha.mailbox_id)
    box = str(alpha.mailbox_id)
    capsys.readouterr()

    assert run_cli(sqlite_app, monkeypatch, "mailbox", "quarantine", box, "--json") == 0
    listed = json.loads(capsys.readouterr().out)["quarantine"]
    assert [(q["id"], q["uid"], q["state"]) for q in listed] == [(qid, 41, "quarantined")]

    assert run_cli(sqlite_app, monkeypatch, "mailbox", "errors", box) == 0
    out = capsys.readouterr().out
    assert "UID 41" in out and "quarantined" in out and "--retry" in out
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "errors", box, "--json") == 0
    assert json.loads(capsys.readouterr().out)["quarantine"][0]["id"] == qid

    assert run_cli(sqlite_app, monkeypatch, "mailbox", "quarantine", box, "--retry", str(qid)) == 0
    assert "next sync" in capsys.readouterr().out.lower()
    assert state_of(sqlite_app, qid) == "retrying"
    code = run_cli(sqlite_app, monkeypatch, "mailbox", "quarantine", box, "--dismiss", str(qid))
    assert code == 0 and state_of(sqlite_app, qid) == "dismissed"
    capsys.readouterr()

    code = run_cli(sqlite_app, monkeypatch, "mailbox", "quarantine", box, "--dismiss", "999")
    assert code != 0
    assert "no quarantined message 999" in capsys.readouterr().err


def test_error_log_page_lists_the_quarantine_with_retry_and_dismiss_buttons(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha, beta = seed_tenant(sqlite_app, "Alpha"), seed_tenant(sqlite_app, "Beta")
    box = member_mailbox(sqlite_app, alpha)
    qid = quarantine(sqlite_app, box)
    csrf = sign_in(web, alpha.member)

    page = web.get(f"/mailboxes/{box}/errors")
    assert page.status_code == 200
    assert f'data-quarantine-id="{qid}"' in page.text and "UID 41" in page.text
    assert f"/mailboxes/{box}/quarantine/{qid}/retry" in page.text
    assert f"/mailboxes/{box}/quarantine/{qid}/dismiss" in page.text
    assert "could not be fetched" in web.get("/mailboxes").text  # the dashboard says so

    retry = web.post(
        f"/mailboxes/{box}/quarantine/{qid}/retry",
        data={"csrf_token": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert retry.status_code == 303 and state_of(sqlite_app, qid) == "retrying"
    no_csrf = web.post(
        f"/mailboxes/{box}/quarantine/{qid}/dismiss", headers=ORIGIN, follow_redirects=False
    )
    assert no_csrf.status_code in (400, 403) and state_of(sqlite_app, qid) == "retrying"
    dismiss = web.post(
        f"/mailboxes/{box}/quarantine/{qid}/dismiss",
        data={"csrf_token": csrf},
        headers=ORIGIN,
    )
    assert dismiss.status_code == 200 and "Dismissed" in dismiss.text
    assert state_of(sqlite_app, qid) == "dismissed"

    web.cookies.clear()
    beta_csrf = sign_in(web, beta.admin)
    assert web.get(f"/mailboxes/{box}/errors").status_code == 404
    theirs = web.post(
        f"/mailboxes/{box}/quarantine/{qid}/retry",
        data={"csrf_token": beta_csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert theirs.status_code == 404 and state_of(sqlite_app, qid) == "dismissed"
