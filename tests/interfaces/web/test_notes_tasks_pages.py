"""The pages of issue 13 items 3-4: the record's activity stream (mail, notes and tasks in
one stream, filterable), a task or note from an email, "My tasks" with overdue first, the
Unmatched page with its create links, and the retention preview on the settings page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom_testing.builders import build_message
from tests.conftest_web import Tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN
from tests.helpers.more_mail import deliver

HTMX = {"HX-Request": "true"}


def kinds(html: str) -> list[str]:
    return re.findall(r'data-kind="(\w+)"', html)


def test_record_activity_merges_mail_notes_and_tasks_and_filters_each(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    record = f"/records/contact/{alpha.contact_id}"
    page = web.get(record).text
    assert 'id="activity"' in page and page.count('class="entry') == 3  # mail without JS
    note = web.post(
        f"{record}/notes",
        data={"csrf_token": csrf, "text": "Prefers calls in the morning"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert note.status_code == 303 and note.headers["location"].startswith(record)
    due = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    task = web.post(
        "/tasks",
        data={
            "csrf_token": csrf,
            "record": f"contact:{alpha.contact_id}",
            "title": "Call Jo",
            "due": due,
        },
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert task.status_code == 303
    everything = web.get(f"{record}/activity?show=all", headers=HTMX).text
    assert "<html" not in everything
    # The mail is from 2026's fixed test dates, the note and task from now: newest first.
    assert kinds(everything)[:2] in (["task", "note"], ["note", "task"])
    assert kinds(everything).count("mail") == 3
    assert "Prefers calls in the morning" in everything and "Call Jo" in everything
    assert kinds(web.get(f"{record}/activity?show=notes", headers=HTMX).text) == ["note"]
    assert kinds(web.get(f"{record}/activity?show=tasks", headers=HTMX).text) == ["task"]
    assert kinds(web.get(f"{record}/activity?show=mail", headers=HTMX).text) == ["mail"] * 3
    assert web.get(f"{record}/activity?show=spam", headers=HTMX).status_code == 422


def test_another_companys_record_activity_and_forms_answer_404(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    csrf = sign_in(web, alpha.admin)
    foreign = f"/records/contact/{beta.contact_id}"
    assert web.get(f"{foreign}/activity", headers=HTMX).status_code == 404
    posted = web.post(f"{foreign}/notes", data={"csrf_token": csrf, "text": "x"}, headers=ORIGIN)
    assert posted.status_code == 404


def test_a_task_from_an_email_shows_on_my_tasks_overdue_first_and_is_marked_done(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    message_id = alpha.message_ids[0]
    page = web.get(f"/messages/{message_id}").text
    assert 'id="task-from-email"' in page and f'value="contact:{alpha.contact_id}"' in page
    today = datetime.now(UTC).date()
    for title, days in (("Later", 5), ("Late", -3)):
        answer = web.post(
            "/tasks",
            data={
                "csrf_token": csrf,
                "record": f"contact:{alpha.contact_id}",
                "title": title,
                "due": (today + timedelta(days=days)).isoformat(),
                "message_id": str(message_id),
                "back": "message",
            },
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert answer.headers["location"].startswith(f"/messages/{message_id}")
    note = web.post(
        "/notes",
        data={
            "csrf_token": csrf,
            "record": f"contact:{alpha.contact_id}",
            "text": "Asked for a discount",
            "message_id": str(message_id),
        },
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert note.status_code == 303
    mine = web.get("/tasks").text
    assert mine.index("Late") < mine.index("Later") and "overdue" in mine
    assert f'href="/messages/{message_id}">from an email' in mine
    task_id = re.search(r'action="/tasks/(\d+)/done"', mine)
    assert task_id
    web.post(
        f"/tasks/{task_id.group(1)}/done", data={"csrf_token": csrf, "done": "true"}, headers=ORIGIN
    )
    after = web.get("/tasks").text
    assert "Late<" not in after.replace("Later", "")
    assert "Later" in after


def test_unmatched_page_lists_strangers_with_a_prefilled_create_link(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    deliver(
        sqlite_app,
        alpha.mailbox_id,
        build_message(sender="Ann Prospect <ann@prospect.example>", to=alpha.admin, subject="Hi"),
    )
    sign_in(web, alpha.member)
    people = web.get("/unmatched").text
    assert "ann@prospect.example" in people and "1 email" in people
    assert (
        'href="/records/new?type=lead&amp;name=Ann+Prospect&amp;email=ann%40prospect.example"'
        in people
    )
    assert "jo@client-alpha.example" not in people  # on a record
    domains = web.get("/unmatched?group=domain").text
    assert (
        'href="/records/new?type=account&amp;name=Prospect&amp;domain=prospect.example"' in domains
    )


def test_settings_page_counts_what_retention_would_delete(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    deliver(
        sqlite_app,
        alpha.mailbox_id,
        build_message(sender="ann@prospect.example", to=alpha.admin, subject="Hi"),
    )
    csrf = sign_in(web, alpha.admin)
    page = web.get("/admin/settings").text
    assert 'name="retention_enabled" value="true" >' in page  # off by default
    assert "it would delete <strong>0</strong> unlinked messages" in page
    form = {"csrf_token": csrf, "visibility": "transparent", "retention_days": "1"}
    form["retention_enabled"] = "true"
    web.post("/admin/settings", data=form, headers=ORIGIN)
    with sqlite_app.sessions() as session:
        from sqlalchemy import update

        from mailroom.db.models import Message

        session.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(days=3)))
        session.commit()
    page = web.get("/admin/settings").text
    assert "The next hourly sweep deletes <strong>1</strong> unlinked message " in page


def test_a_task_is_edited_reassigned_to_a_colleague_and_deleted_from_my_tasks(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    csrf = sign_in(web, alpha.admin)
    choices = web.get("/tasks/assignees").text
    assert alpha.member in choices and alpha.admin in choices and beta.admin not in choices
    web.post(
        "/tasks",
        data={
            "csrf_token": csrf,
            "record": f"contact:{alpha.contact_id}",
            "title": "Draft",
            "due": "2030-01-01",
        },
        headers=ORIGIN,
    )
    task_id = re.search(r'action="/tasks/(\d+)/edit"', web.get("/tasks").text)
    assert task_id
    with sqlite_app.sessions() as session:
        from sqlalchemy import select

        from mailroom.db.models import User

        member_id = session.scalar(select(User.id).where(User.email == alpha.member))
    edited = web.post(
        f"/tasks/{task_id.group(1)}/edit",
        data={"csrf_token": csrf, "title": "Final", "due": "2030-02-01", "assignee_id": member_id},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert edited.status_code == 303
    assert ">Final</strong>" not in web.get("/tasks").text  # now the member's
    web.cookies.clear()
    csrf = sign_in(web, alpha.member)
    theirs = web.get("/tasks").text
    assert ">Final</strong>" in theirs and "due 2030-02-01" in theirs
    web.post(f"/tasks/{task_id.group(1)}/delete", data={"csrf_token": csrf}, headers=ORIGIN)
    assert ">Final</strong>" not in web.get("/tasks?done=1").text
