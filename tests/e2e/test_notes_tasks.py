"""Notes, tasks and unmatched mail in real Chromium (issue 13, items 3-4): a task and a note
added from an email, "My tasks" with the overdue task first and marked done, the record's
activity stream filtered, the Unmatched page with its create link — each also at a 390-px
phone width without sideways scrolling. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailroom_testing.builders import build_message
from tests.conftest_web import LiveServer, seed_tenant
from tests.e2e.test_dashboard import TIMEOUT, browser, shot, sign_in
from tests.helpers.more_mail import deliver

__all__ = ["browser"]  # the fixture, imported for this module's tests

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def test_add_a_task_and_note_from_an_email_then_work_through_my_tasks_in_chromium(
    live_server: LiveServer, browser: object, fast_hashing: None
) -> None:
    tenant = seed_tenant(live_server.app, "Alpha")
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, tenant.admin)
    today = datetime.now(UTC).date()
    page.goto(f"{url}/messages/{tenant.message_ids[0]}")
    form = page.locator("#task-from-email")
    chooser = form.locator("select[name=assignee_id]")  # loaded by htmx into the form
    chooser.wait_for()
    assert "(me)" in chooser.locator("option:checked").inner_text()
    assert tenant.member in chooser.inner_text()
    assert form.locator("input[name=title]").input_value() == "Reply: Quote for Alpha"
    form.locator("input[name=due]").fill((today - timedelta(days=1)).isoformat())
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{url}/messages/{tenant.message_ids[0]}?notice=task-saved")
    page.locator("#task-from-email input[name=title]").fill("Send the contract")
    page.locator("#task-from-email input[name=due]").fill((today + timedelta(days=3)).isoformat())
    page.locator("#task-from-email button[type=submit]").click()
    page.wait_for_url("**notice=task-saved")
    page.locator("#note-from-email textarea").fill("Wants the quote by Friday")
    page.locator("#note-from-email button[type=submit]").click()
    page.wait_for_url("**notice=note-saved")
    shot(page, "20-message-task-note-form")

    page.click("nav >> text=My tasks")
    items = page.locator("#my-tasks li.task")
    assert items.count() == 2
    assert items.nth(0).locator(".title").inner_text() == "Reply: Quote for Alpha"
    assert "overdue" in items.nth(0).inner_text()
    shot(page, "21-my-tasks")
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate(FITS), "My tasks scrolls sideways at 390 px"
    shot(page, "21-my-tasks-phone")
    items.nth(0).locator("button", has_text="Done").click()
    page.wait_for_url("**notice=task-saved")
    assert [t.strip() for t in page.locator("#my-tasks .title").all_inner_texts()] == [
        "Send the contract"
    ]

    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{url}/records/contact/{tenant.contact_id}")
    page.locator("#timeline [data-kind=note]").wait_for()
    stream = page.locator("#timeline [data-kind]")
    kinds = [stream.nth(i).get_attribute("data-kind") for i in range(stream.count())]
    assert sorted(kinds) == ["mail", "mail", "mail", "note", "task", "task"]
    shot(page, "22-record-activity")
    page.click("#activity >> text=Tasks")
    page.locator("#timeline [data-kind=task]").first.wait_for()
    page.locator("#timeline [data-kind=mail]").first.wait_for(state="detached")
    assert page.locator("#timeline [data-kind=task]").count() == 2
    page.click("#activity >> text=Notes")
    page.locator("#timeline [data-kind=task]").first.wait_for(state="detached")
    assert page.locator("#timeline [data-kind]").all_inner_texts()[0].count("Friday") == 1
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate(FITS), "the record page scrolls sideways at 390 px"
    shot(page, "22-record-activity-phone")
    page.goto(f"{url}/messages/{tenant.message_ids[0]}")
    assert page.evaluate(FITS), "the message page scrolls sideways at 390 px"
    shot(page, "20-message-task-note-form-phone")


def test_unmatched_lists_a_new_prospect_and_links_to_the_create_form_in_chromium(
    live_server: LiveServer, browser: object, fast_hashing: None
) -> None:
    tenant = seed_tenant(live_server.app, "Alpha")
    deliver(
        live_server.app,
        tenant.mailbox_id,
        build_message(
            sender="Ann Prospect <ann@prospect.example>", to=tenant.admin, subject="Pricing?"
        ),
        build_message(sender="bob@prospect.example", to=tenant.admin, subject="Also me", minutes=9),
    )
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, tenant.member)
    page.click("nav >> text=Unmatched")
    rows = page.locator("#unmatched-list li")
    assert rows.count() == 2
    assert "bob@prospect.example" in rows.nth(0).inner_text()  # newest first
    assert "Ann Prospect" in rows.nth(1).inner_text()
    shot(page, "23-unmatched-people")
    page.click("text=By domain")
    page.wait_for_url("**group=domain")
    assert "2 emails" in page.locator("#unmatched-list li").first.inner_text()
    shot(page, "23-unmatched-domains")
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate(FITS), "Unmatched scrolls sideways at 390 px"
    shot(page, "23-unmatched-domains-phone")
    page.goto(f"{url}/unmatched")
    assert page.evaluate(FITS)
    shot(page, "23-unmatched-people-phone")
    link = page.locator("#unmatched-list li").nth(1).locator("a", has_text="Create lead")
    assert link.get_attribute("href") == (
        "/records/new?type=lead&name=Ann+Prospect&email=ann%40prospect.example"
    )
