"""Notes and tasks through the REST API (issue 13, item 4): the contract's routes and
shapes, 422 naming the field, and the two-company matrix — another company's record,
message, task or user answers exactly like one that does not exist."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom.db.models import User
from mailroom.db.task_models import Note, Task
from mailroom_testing.builders import build_message
from tests.conftest_web import Tenant
from tests.helpers.more_mail import deliver


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user_id(app: App, email: str) -> int:
    with app.sessions() as session:
        from sqlalchemy import select

        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


def test_a_note_on_a_record_is_created_with_201_and_listed_newest_first(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    url = f"/api/v1/records/contact/{alpha.contact_id}/notes"
    first = web.post(url, json={"text": "Called, wants a quote"}, headers=auth(alpha.member_token))
    assert first.status_code == 201, first.text
    note = first.json()
    assert note["record"] == f"contact:{alpha.contact_id}" and note["author"] == alpha.member
    assert note["text"] == "Called, wants a quote" and note["message_id"] is None
    second = web.post(
        url,
        json={"text": "About this mail", "message_id": alpha.message_ids[0]},
        headers=auth(alpha.admin_token),
    )
    assert second.status_code == 201 and second.json()["message_id"] == alpha.message_ids[0]
    listed = web.get(url, headers=auth(alpha.member_token)).json()["items"]
    assert [n["text"] for n in listed] == ["About this mail", "Called, wants a quote"]


def test_bad_notes_and_tasks_answer_422_naming_the_field(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    headers = auth(alpha.admin_token)
    notes = f"/api/v1/records/contact/{alpha.contact_id}/notes"
    empty = web.post(notes, json={"text": "   "}, headers=headers)
    assert empty.status_code == 422 and "text" in empty.json()["message"]
    extra = web.post(notes, json={"text": "x", "colour": "red"}, headers=headers)
    assert extra.status_code == 422 and "colour" in extra.json()["message"]
    task = {"record": f"contact:{alpha.contact_id}", "title": "Call", "due": "2026-13-40"}
    bad_date = web.post("/api/v1/tasks", json=task, headers=headers)
    assert bad_date.status_code == 422 and "due" in bad_date.json()["message"]
    bad_ref = web.post(
        "/api/v1/tasks", json=task | {"due": "2026-12-01", "record": "jo"}, headers=headers
    )
    assert bad_ref.status_code == 422 and "record" in bad_ref.json()["message"]
    no_title = web.post(
        "/api/v1/tasks", json=task | {"due": "2026-12-01", "title": " "}, headers=headers
    )
    assert no_title.status_code == 422 and "title" in no_title.json()["message"]
    unknown_type = web.post("/api/v1/records/person/1/notes", json={"text": "x"}, headers=headers)
    assert unknown_type.status_code == 422


def test_tasks_are_created_listed_overdue_first_paged_done_and_deleted(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    headers = auth(alpha.member_token)
    today = datetime.now(UTC).date()
    record = f"contact:{alpha.contact_id}"
    made = []
    for title, days in (("Send quote", 3), ("Call back", -2), ("Chase invoice", 0)):
        answer = web.post(
            "/api/v1/tasks",
            json={
                "record": record,
                "title": title,
                "due": (today + timedelta(days=days)).isoformat(),
            },
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    assert made[0]["assignee"] == alpha.member and made[0]["record_name"] == "Jo Alpha"
    assert made[1]["overdue"] and not made[2]["overdue"]
    titles = []
    cursor = None
    for _ in range(5):
        query = "/api/v1/tasks?assignee=me&open=true&limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = web.get(query, headers=headers).json()
        titles += [t["title"] for t in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert titles == ["Call back", "Chase invoice", "Send quote"]
    done = web.patch(f"/api/v1/tasks/{made[1]['id']}", json={"done": True}, headers=headers)
    assert done.status_code == 200 and done.json()["done"] and done.json()["done_at"]
    still_open = web.get("/api/v1/tasks?assignee=me&open=true", headers=headers).json()
    assert [t["title"] for t in still_open["items"]] == ["Chase invoice", "Send quote"]
    every = web.get("/api/v1/tasks?assignee=me&open=false", headers=headers).json()
    assert len(every["items"]) == 3
    edited = web.patch(
        f"/api/v1/tasks/{made[0]['id']}", json={"title": "Send the quote"}, headers=headers
    )
    assert edited.json()["title"] == "Send the quote"
    assert web.delete(f"/api/v1/tasks/{made[0]['id']}", headers=headers).status_code == 204
    assert web.get(f"/api/v1/tasks/{made[0]['id']}", headers=headers).status_code == 404
    assert (
        web.get("/api/v1/tasks?assignee=me", headers=auth(alpha.admin_token)).json()["items"] == []
    )


def test_a_task_can_be_assigned_to_a_colleague_who_then_sees_it_as_theirs(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    member = user_id(sqlite_app, alpha.member)
    body = {
        "record": f"account:{alpha.account_id}",
        "title": "Visit",
        "due": "2030-01-02",
        "assignee_id": member,
        "message_id": alpha.message_ids[1],
    }
    made = web.post("/api/v1/tasks", json=body, headers=auth(alpha.admin_token))
    assert made.status_code == 201 and made.json()["assignee_id"] == member
    mine = web.get("/api/v1/tasks", headers=auth(alpha.member_token)).json()["items"]
    assert [(t["title"], t["message_id"]) for t in mine] == [("Visit", alpha.message_ids[1])]


@pytest.mark.parametrize("caller", ["admin", "member"])
def test_another_companys_record_message_task_and_user_answer_like_missing_ones(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant], caller: str
) -> None:
    alpha, beta = two_tenants
    token = alpha.admin_token if caller == "admin" else alpha.member_token
    headers = auth(token)
    beta_task = web.post(
        "/api/v1/tasks",
        json={"record": f"contact:{beta.contact_id}", "title": "Beta's", "due": "2030-01-01"},
        headers=auth(beta.admin_token),
    ).json()
    beta_note = web.post(
        f"/api/v1/records/contact/{beta.contact_id}/notes",
        json={"text": "Beta's"},
        headers=auth(beta.admin_token),
    ).json()
    foreign = web.post(
        f"/api/v1/records/contact/{beta.contact_id}/notes", json={"text": "x"}, headers=headers
    )
    missing = web.post("/api/v1/records/contact/999999/notes", json={"text": "x"}, headers=headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["message"].replace(str(beta.contact_id), "N") == missing.json()[
        "message"
    ].replace("999999", "N")
    own = f"contact:{alpha.contact_id}"
    for body in (
        {"record": f"contact:{beta.contact_id}", "title": "x", "due": "2030-01-01"},
        {"record": own, "title": "x", "due": "2030-01-01", "message_id": beta.message_ids[0]},
    ):
        assert web.post("/api/v1/tasks", json=body, headers=headers).status_code == 404
    note_on_foreign_mail = web.post(
        f"/api/v1/records/contact/{alpha.contact_id}/notes",
        json={"text": "x", "message_id": beta.message_ids[0]},
        headers=headers,
    )
    assert note_on_foreign_mail.status_code == 404
    beta_user = user_id(sqlite_app, beta.admin)
    assigned = web.post(
        "/api/v1/tasks",
        json={"record": own, "title": "x", "due": "2030-01-01", "assignee_id": beta_user},
        headers=headers,
    )
    nobody = web.post(
        "/api/v1/tasks",
        json={"record": own, "title": "x", "due": "2030-01-01", "assignee_id": 999999},
        headers=headers,
    )
    assert assigned.status_code == nobody.status_code == 422
    assert "assignee_id" in assigned.json()["message"]
    for method, path in (
        ("get", f"/api/v1/tasks/{beta_task['id']}"),
        ("patch", f"/api/v1/tasks/{beta_task['id']}"),
        ("delete", f"/api/v1/tasks/{beta_task['id']}"),
        ("delete", f"/api/v1/notes/{beta_note['id']}"),
    ):
        kwargs = {"json": {"done": True}} if method == "patch" else {}
        answer = getattr(web, method)(path, headers=headers, **kwargs)
        assert answer.status_code == 404, (method, path)
    assert web.get("/api/v1/tasks?assignee=any", headers=headers).json()["items"] == []
    with sqlite_app.sessions() as session:
        kept = session.get(Task, beta_task["id"])
        assert kept is not None and not kept.done
        assert session.get(Note, beta_note["id"]) is not None


def test_only_the_assignee_creator_or_an_admin_changes_a_task(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant], fast_hashing: None
) -> None:
    alpha, _ = two_tenants
    from mailroom.crm.companies import add_user, get_company
    from mailroom.security.auth import create_api_token

    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Alpha")
        other = add_user(session, company=company, email="other@alpha.example")
        other_token = create_api_token(session, user=other, name="t")[0]
    made = web.post(
        "/api/v1/tasks",
        json={"record": f"contact:{alpha.contact_id}", "title": "Mine", "due": "2030-01-01"},
        headers=auth(alpha.member_token),
    ).json()
    refused = web.patch(
        f"/api/v1/tasks/{made['id']}", json={"done": True}, headers=auth(other_token)
    )
    assert refused.status_code == 403
    seen = web.get(f"/api/v1/tasks/{made['id']}", headers=auth(other_token))
    assert seen.status_code == 200 and not seen.json()["done"]
    by_admin = web.patch(
        f"/api/v1/tasks/{made['id']}", json={"done": True}, headers=auth(alpha.admin_token)
    )
    assert by_admin.status_code == 200 and by_admin.json()["done"]


def test_in_strict_mode_a_note_on_mail_the_viewer_cannot_see_is_refused(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    deliver(
        sqlite_app,
        alpha.mailbox_id,
        build_message(sender="jo@client-alpha.example", to=alpha.admin, subject="Private"),
    )
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    with sqlite_app.sessions() as session:
        from sqlalchemy import select

        from mailroom.db.models import Message

        private = session.scalar(select(Message.id).where(Message.subject == "Private"))
    body = {"text": "x", "message_id": private}
    url = f"/api/v1/records/contact/{alpha.contact_id}/notes"
    assert web.post(url, json=body, headers=auth(alpha.member_token)).status_code == 404
    assert web.post(url, json=body, headers=auth(alpha.admin_token)).status_code == 201


def test_schema_publishes_the_notes_tasks_and_unmatched_routes(web: TestClient) -> None:
    paths = set(web.get("/api/v1/openapi.json").json()["paths"])
    assert {
        "/api/v1/records/{type}/{id}/notes",
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}",
        "/api/v1/unmatched",
    } <= paths
    assert date.today()  # the module's imports are all used


def test_settings_answer_says_retention_is_off_and_what_it_would_delete(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    deliver(
        sqlite_app,
        alpha.mailbox_id,
        build_message(sender="ann@prospect.example", to=alpha.admin, subject="Unlinked"),
    )
    headers = auth(alpha.admin_token)
    fresh = web.get("/api/v1/settings", headers=headers).json()
    assert fresh["retention_enabled"] is False and fresh["retention_would_delete"] == 0
    with sqlite_app.sessions() as session:
        from sqlalchemy import update

        from mailroom.db.models import Message

        week_ago = datetime.now(UTC) - timedelta(days=8)
        session.execute(
            update(Message).where(Message.subject == "Unlinked").values(created_at=week_ago)
        )
        session.commit()
    assert web.get("/api/v1/settings", headers=headers).json()["retention_would_delete"] == 1


def test_a_merge_moves_the_merged_records_notes_and_tasks_onto_the_survivor(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = auth(alpha.admin_token)
    made = web.post(
        "/api/v1/records",
        json={
            "type": "contact",
            "name": "Jo (duplicate)",
            "emails": [{"address": "jo2@dup.example"}],
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    duplicate = made.json()["id"]
    note = web.post(
        f"/api/v1/records/contact/{duplicate}/notes",
        json={"text": "Met at the fair"},
        headers=admin,
    )
    assert note.status_code == 201
    task = web.post(
        "/api/v1/tasks",
        json={"record": f"contact:{duplicate}", "title": "Send the brochure", "due": "2030-01-01"},
        headers=admin,
    )
    assert task.status_code == 201
    merged = web.post(
        f"/api/v1/records/contact/{alpha.contact_id}/merge",
        json={"from": f"contact:{duplicate}"},
        headers=admin,
    )
    assert merged.status_code == 200, merged.text
    notes = web.get(f"/api/v1/records/contact/{alpha.contact_id}/notes", headers=admin).json()
    assert "Met at the fair" in [n["text"] for n in notes["items"]]
    moved = web.get(f"/api/v1/tasks/{task.json()['id']}", headers=admin).json()
    assert moved["record"] == f"contact:{alpha.contact_id}"


def test_the_unmatched_create_link_opens_the_new_record_form_filled_in(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    from tests.conftest_web import sign_in

    alpha, _ = two_tenants
    sign_in(web, alpha.member)
    page = web.get("/records/new?type=contact&name=Kim+Prospect&email=kim@prospect.example")
    assert page.status_code == 200
    assert 'value="Kim Prospect"' in page.text and 'value="kim@prospect.example"' in page.text
    assert '<option value="contact" selected' in page.text
    assert 'id="new-record" open' in page.text
