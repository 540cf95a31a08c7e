"""Records in real Chromium (issue 13, items 1 and 2): a web-form email becomes a lead from
its Reply-To in one click, the lead is edited and given another address, a record is found
by name and linked, and the record, records and message pages fit a 390-px phone.
Screenshots (desktop and phone) go to test-output/screenshots/records-*.png."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.db.models import Message
from tests.conftest_web import LiveServer, seed_tenant
from tests.e2e.test_dashboard import TIMEOUT, browser, shot, sign_in
from tests.helpers.matching_kit import ingest, mail

__all__ = ["browser"]  # the fixture, imported for this module's tests

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def test_a_web_form_email_becomes_a_lead_which_is_edited_and_the_pages_fit_a_phone(
    live_server: LiveServer, browser: object, fast_hashing: None
) -> None:
    app = live_server.app
    alpha = seed_tenant(app, "Alpha")
    ingest(
        app,
        alpha.mailbox_id,
        mail(
            sender="Web forms <noreply@forms.example>",
            to="admin@alpha.example",
            subject="Enquiry: 40 chairs",
            message_id="enquiry@forms.example",
            headers=[("Reply-To", "Pat Buyer <pat@buyer-corp.example>")],
        ),
        mail(
            sender="Pat Buyer <pat@buyer-corp.example>",
            to="admin@alpha.example",
            subject="Re: Enquiry: 40 chairs",
            message_id="pat-2@buyer-corp.example",
            in_reply_to="enquiry@forms.example",
            minutes=5,
        ),
    )
    with app.sessions() as session:
        enquiry = session.scalar(
            select(Message.id).where(Message.message_id == "enquiry@forms.example")
        )
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, alpha.member)

    # The message page: make a lead from the Reply-To (the form mailer is not the person).
    page.goto(f"{url}/messages/{enquiry}")
    page.check("#use-reply-to")
    shot(page, "records-01-message")
    page.click("#create-lead")
    page.wait_for_url(f"{url}/records/lead/**")
    assert page.locator("h1").inner_text().startswith("Pat Buyer")
    assert "2 stored messages linked" in page.locator("#mail-counts").inner_text()
    assert page.locator(".entry").count() == 2
    shot(page, "records-02-new-lead")

    # Edit it: name, stage; then one more address (its mail would link at once).
    page.click("#edit summary")
    page.fill("#edit-form input[name=name]", "Pat Buyer (Buyer Corp)")
    page.fill("#edit-form input[name=stage]", "qualified")
    page.click("#edit-form button[type=submit]")
    page.locator("text=Saved.").wait_for()
    assert page.locator("h1").inner_text().startswith("Pat Buyer (Buyer Corp)")
    assert "qualified" in page.locator(".facts").inner_text()
    page.fill("#add-email input[name=address]", "pat.buyer@home.example")
    page.click("#add-email button[type=submit]")
    page.locator("#addresses li", has_text="pat.buyer@home.example").wait_for()
    shot(page, "records-03-edited")

    # Link to…: find the account by name on the message page, not by typing TYPE:ID.
    page.goto(f"{url}/messages/{enquiry}")
    page.fill("#link-search input[name=find]", "Client Alpha")
    page.click("#link-search button")
    page.locator("#link-found button", has_text="Link").first.click()
    linked = page.locator("#linked-records")
    linked.locator("a", has_text="Client Alpha").wait_for()
    text = linked.inner_text()
    assert "Pat Buyer (Buyer Corp)" in text and "lead" in text and "by hand" in text
    shot(page, "records-04-linked")

    # A phone: nothing wider than the screen on the records, record and message pages.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in (
        ("records", "/records"),
        ("record", page.locator("#linked-records a").first.get_attribute("href")),
        ("message", f"/messages/{enquiry}"),
    ):
        page.goto(f"{url}{path}")
        page.locator("h1").wait_for()
        shot(page, f"records-05-{name}-phone")
        assert page.evaluate(FITS), f"the {name} page is wider than a 390-px phone"
