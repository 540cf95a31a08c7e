"""The REST API's contract: routes, shapes, pagination, errors, and the CLI's JSON fields."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.cli import main
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Record
from mailroom.mail.html import BLOCKED_IMAGE
from tests.conftest_web import Tenant


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_records_search_by_name_email_and_domain(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    headers = auth(alpha.member_token)
    everything = web.get("/api/v1/records", headers=headers).json()
    assert {(r["type"], r["name"]) for r in everything["items"]} == {
        ("contact", "Jo Alpha"),
        ("account", "Client Alpha"),
    }
    assert everything["next"] is None
    item = web.get("/api/v1/records?type=contact&q=jo@client-alpha", headers=headers).json()
    assert [r["id"] for r in item["items"]] == [alpha.contact_id]
    assert set(item["items"][0]) >= {"id", "type", "name", "emails"}
    assert item["items"][0]["emails"] == ["jo@client-alpha.example"]
    by_domain = web.get("/api/v1/records?q=client-alpha.example", headers=headers).json()
    assert alpha.account_id in [r["id"] for r in by_domain["items"]]
    by_name = web.get("/api/v1/records?q=ALPHA&type=account", headers=headers).json()
    assert [r["id"] for r in by_name["items"]] == [alpha.account_id]


def test_records_pages_with_a_cursor_until_next_is_null(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Alpha")
        for n in range(7):
            add_record(session, company=company, record_type="lead", name=f"Lead {n}")
    seen: list[int] = []
    url = "/api/v1/records?type=lead&limit=3"
    cursor = None
    for _ in range(10):
        page = web.get(
            url + (f"&cursor={cursor}" if cursor else ""), headers=auth(alpha.admin_token)
        )
        assert page.status_code == 200
        seen += [r["id"] for r in page.json()["items"]]
        cursor = page.json()["next"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7


def test_timeline_items_have_the_fields_of_the_cli_json(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    answer = web.get(
        f"/api/v1/records/contact/{alpha.contact_id}/timeline", headers=auth(alpha.admin_token)
    )
    assert answer.status_code == 200
    items = answer.json()["items"]
    with sqlite_app.sessions() as session:
        record = session.get(Record, alpha.contact_id)
        assert record is not None
        cli = [e.to_json() for e in timeline_entries(session, records=[record])]
    assert len(items) == 3
    for api_item, cli_item in zip(items, cli, strict=True):
        assert {k: api_item[k] for k in cli_item} == cli_item
        assert api_item["access"] == "everything"
    # the reply is threaded with the message it answers
    assert items[0]["thread"] == items[2]["thread"] != items[1]["thread"]
    assert items[0]["conversation"] == items[2]["conversation"] != items[1]["conversation"]
    one = web.get(f"/api/v1/records/contact/{alpha.contact_id}", headers=auth(alpha.admin_token))
    assert one.json()["emails"] == ["jo@client-alpha.example"]


def test_timeline_pages_by_cursor_in_date_order(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    url = f"/api/v1/records/contact/{alpha.contact_id}/timeline"
    first = web.get(url + "?limit=2", headers=auth(alpha.admin_token)).json()
    assert len(first["items"]) == 2 and first["next"]
    second = web.get(url + f"?limit=2&cursor={first['next']}", headers=auth(alpha.admin_token))
    rest = second.json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    dates = [i["date"] for i in first["items"] + rest["items"]]
    assert dates == sorted(dates, reverse=True)


def test_message_is_sanitised_with_remote_images_blocked_until_asked(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    first = alpha.message_ids[0]
    body = web.get(f"/api/v1/messages/{first}", headers=auth(alpha.member_token)).json()
    assert set(body) >= {"subject", "from", "to", "cc", "date", "text", "html", "attachments"}
    assert body["subject"] == "Quote for Alpha"
    assert body["from"] == "jo@client-alpha.example"
    assert "<b>Alpha</b>" in body["html"]
    assert "tracker.example" not in body["html"] and BLOCKED_IMAGE in body["html"]
    assert body["blocked_images"] == 1
    shown = web.get(f"/api/v1/messages/{first}?images=true", headers=auth(alpha.member_token))
    assert "https://tracker.example/pixel.png" in shown.json()["html"]
    by_header = web.get(
        f"/api/v1/messages/{alpha.message_id_headers[0]}", headers=auth(alpha.member_token)
    )
    assert by_header.status_code == 200 and by_header.json()["id"] == first


def test_attachment_downloads_as_a_file(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    message_id, _attachment_id = alpha.attachment
    body = web.get(f"/api/v1/messages/{message_id}", headers=auth(alpha.admin_token)).json()
    (listed,) = body["attachments"]
    assert listed["filename"] == "contract.pdf"
    data = web.get(listed["url"], headers=auth(alpha.admin_token))
    assert data.content == b"%PDF-1.4 test"
    assert data.headers["content-disposition"].startswith("attachment;")
    assert data.headers["x-content-type-options"] == "nosniff"


def test_mailboxes_list_status_and_last_error(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = web.get("/api/v1/mailboxes", headers=auth(alpha.admin_token)).json()
    (box,) = admin["items"]
    assert {k: box[k] for k in ("id", "address", "status", "last_error")} == {
        "id": alpha.mailbox_id,
        "address": alpha.admin,
        "status": "ok",
        "last_error": None,
    }
    assert "secret" not in box and "password" not in str(box)
    member = web.get("/api/v1/mailboxes", headers=auth(alpha.member_token)).json()
    assert member["items"] == []  # a member sees only their own mailboxes


def test_errors_are_json_with_a_hint(web: TestClient, two_tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = two_tenants
    none = web.get("/api/v1/records")
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert "mailroom token create" in none.json()["hint"]
    bad = web.get("/api/v1/records", headers=auth("mr_not-a-real-token"))
    assert bad.status_code == 401
    wrong_type = web.get("/api/v1/records?type=planet", headers=auth(alpha.admin_token))
    assert wrong_type.status_code == 422 and "type" in wrong_type.json()["message"]
    cursor = web.get("/api/v1/records?cursor=garbage", headers=auth(alpha.admin_token))
    assert cursor.status_code == 422 and cursor.json()["hint"]
    missing = web.get("/api/v1/records/contact/999999", headers=auth(alpha.admin_token))
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"
    # Digits int() refuses (found by schemathesis): not found, never a server error.
    for odd in ("²", "①", "1²"):
        message = web.get(f"/api/v1/messages/{odd}", headers=auth(alpha.admin_token))
        assert message.status_code == 404 and message.json()["error"] == "not-found"
    odd_cursor = base64.urlsafe_b64encode("v1:²".encode()).decode()
    cursor = web.get(f"/api/v1/records?cursor={odd_cursor}", headers=auth(alpha.admin_token))
    assert cursor.status_code == 422


def test_an_unknown_route_or_method_is_the_same_json_error_with_a_hint(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    nowhere = web.get("/api/v1/planets", headers=auth(alpha.admin_token))
    assert nowhere.status_code == 404
    assert nowhere.json()["error"] == "not-found"
    assert "GET /api/v1/planets" in nowhere.json()["message"]
    assert "openapi.json" in nowhere.json()["hint"]
    wrong = web.delete("/api/v1/settings", headers=auth(alpha.admin_token))
    assert wrong.status_code == 405 and wrong.json()["error"] == "bad-input"
    assert "PATCH" in wrong.headers["allow"] or "GET" in wrong.headers["allow"]
    page = web.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "No page GET /no-such-page." in page.text


def test_a_new_record_links_past_mail_visible_through_the_api(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    with transaction(sqlite_app.sessions) as session:
        lead = add_record(
            session,
            company=get_company(session, "Alpha"),
            record_type="lead",
            name="Jo lead",
            emails=[EmailField("main", "jo@client-alpha.example")],
        )
        lead_id = lead.id
    items = web.get(
        f"/api/v1/records/lead/{lead_id}/timeline", headers=auth(alpha.admin_token)
    ).json()["items"]
    assert len(items) == 3


def test_cli_token_create_prints_a_token_the_api_accepts(
    web: TestClient,
    sqlite_app: App,
    two_tenants: tuple[Tenant, Tenant],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alpha, _ = two_tenants
    monkeypatch.delenv("MAILROOM_DATABASE_URL", raising=False)
    data_dir = str(sqlite_app.settings.data_dir)
    code = main(["--data-dir", data_dir, "token", "create", "--user", alpha.member])
    token = capsys.readouterr().out.strip()
    assert code == 0 and token.startswith("mr_") and "\n" not in token
    answer = web.get("/api/v1/mailboxes", headers=auth(token))
    assert answer.status_code == 200
    assert main(["--data-dir", data_dir, "token", "create", "--user", "nobody@x.example"]) == 1
