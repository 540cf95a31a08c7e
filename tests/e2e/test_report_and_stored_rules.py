"""The activity report page, "Run on stored mail" and what was filtered, in real Chromium.

The report's SVG chart is drawn from the same counts as the API, the grouping can be
changed, and a 390-px phone screen shows it without sideways scrolling; a rule run on
stored mail shows its preview count, then changes as many messages, on a phone screen.
The record page says what was skipped (loaded by htmx), and blocking an address offers
to remove the mail it already logged. Screenshots go to test-output/screenshots/
(report-*, rules-run-on-stored-*, record-filtered-note-phone, blocklist-offer-phone,
admin-matching-phone)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailroom.crm.companies import get_company
from mailroom.db.engine import transaction
from mailroom.matching.rulebook import add_rule
from tests.conftest_web import LiveServer, seed_tenant
from tests.e2e.test_dashboard import ARGS, CHROMIUM, TIMEOUT, playwright_api, shot, sign_in
from tests.helpers.matching_kit import ingest, mail

RANGE = "from=2026-01-05&to=2026-01-18"


@pytest.fixture
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_the_activity_report_draws_its_chart_and_fits_a_phone_in_chromium(
    live_server: LiveServer, chromium: object
) -> None:
    tenant = seed_tenant(live_server.app, "Alpha")
    page = chromium.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, live_server.url, tenant.admin)
    page.click("nav >> text=Reports")
    page.wait_for_url(f"{live_server.url}/reports/activity")
    page.goto(f"{live_server.url}/reports/activity?by=week&{RANGE}")
    chart = page.locator("svg.chart")
    assert chart.count() == 1
    assert chart.locator("rect.sent").count() == 1  # one week with mail: 1 sent, 2 received
    assert chart.locator("rect.received").count() == 1
    assert chart.get_attribute("role") == "img"
    rows = page.locator("table.report-table tbody tr")
    assert rows.nth(0).inner_text().split("\t")[1:] == ["1", "2", "3"]
    shot(page, "report-activity-desktop")
    page.select_option("select[name=by]", "user")
    page.click("form.report-form button[type=submit]")
    page.wait_for_url("**/reports/activity?by=user*")
    labels = chart.locator("text.chart-label").all_text_contents()
    assert sorted(labels) == sorted([tenant.admin, tenant.member])
    assert page.locator("table.report-table").inner_text().count("\t3") == 1
    with page.expect_download() as download:
        page.click("text=Download CSV")
    path = download.value.path()
    assert path.read_text().splitlines()[0] == "user_id,email,name,sent,received,total"
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/reports/activity?by=week&{RANGE}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    box = page.locator("svg.chart").bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] > 20
    shot(page, "report-activity-phone")


def test_run_on_stored_mail_shows_the_preview_count_then_runs_in_chromium(
    live_server: LiveServer, chromium: object
) -> None:
    app = live_server.app
    tenant = seed_tenant(app, "Alpha")
    with transaction(app.sessions) as session:
        add_rule(
            session,
            company=get_company(session, "Alpha"),
            name="no-contracts",
            action="ignore",
            conditions={"subject_contains": "contract"},
        )
    page = chromium.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, live_server.url, tenant.admin)
    page.goto(f"{live_server.url}/records/contact/{tenant.contact_id}")
    assert page.locator("#timeline >> text=Contract").count() >= 1
    page.goto(f"{live_server.url}/admin/rules")
    page.click("button[aria-label='Run no-contracts on stored mail']")
    assert page.locator("#stored-preview-count").inner_text() == "1"
    card = page.locator("#stored-run").bounding_box()
    assert card is not None and card["x"] + card["width"] <= 390
    shot(page, "rules-run-on-stored-preview-phone")
    page.click("#stored-run-button")
    page.wait_for_selector("#stored-affected")
    assert page.locator("#stored-affected").inner_text() == "1"
    shot(page, "rules-run-on-stored-done-phone")
    page.goto(f"{live_server.url}/records/contact/{tenant.contact_id}")
    assert page.locator("#timeline >> text=Contract").count() == 0
    note = page.locator(".filtered-note")  # and the record page says where it went
    note.wait_for()
    assert "1 ignored by rule no-contracts" in note.inner_text()
    page.goto(f"{live_server.url}/admin/rules")
    page.click("button[aria-label='Run no-contracts on stored mail']")
    assert page.locator("#stored-preview-count").inner_text() == "0"  # nothing left to do


def test_record_page_says_what_was_filtered_and_blocking_offers_removal_in_chromium(
    live_server: LiveServer, chromium: object
) -> None:
    app = live_server.app
    tenant = seed_tenant(app, "Alpha")
    ingest(
        app,
        tenant.mailbox_id,
        mail(sender="jo@client-alpha.example", to=tenant.admin, subject="Spring offers",
             headers=[("List-Id", "<offers.client-alpha.example>")]),
    )  # fmt: skip
    page = chromium.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, live_server.url, tenant.admin)
    page.goto(f"{live_server.url}/records/contact/{tenant.contact_id}")
    note = page.locator(".filtered-note")
    note.wait_for()  # loaded by htmx after the page
    assert "1 bulk, list or automatic mail" in note.inner_text()
    shot(page, "record-filtered-note-phone")
    page.click("text=See which, and why")
    assert "Spring offers" in page.locator("table.filtered-list").inner_text()
    page.goto(f"{live_server.url}/admin/blocklist")
    page.fill("#block-entry", "jo@client-alpha.example")
    page.click("#block-form button[type=submit]")
    count = page.locator("#blocked-logged-count")
    count.wait_for()
    assert count.inner_text() == "3"
    shot(page, "blocklist-offer-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#remove-blocked-logged")
    assert "Removed 3" in page.locator("#blocked-removed").inner_text()
    page.goto(f"{live_server.url}/admin/matching")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "admin-matching-phone")
