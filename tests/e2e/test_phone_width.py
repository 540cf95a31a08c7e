"""Every page at a 390-px phone width (issue 13, item 12): signed in as an admin of a
company with data (records, mail, a rule, a task and a note, a failing mailbox with its
fix, long unbroken words), each page is visited at 390x844 and must not scroll sideways
(`scrollWidth <= innerWidth`); a desktop and a phone screenshot of each go to
test-output/screenshots/phone-width/. The browser runs in Asia/Tokyo and the pages then
show times in that zone, saved from the browser on the first page."""

from __future__ import annotations

from datetime import UTC, date
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailroom.crm.companies import get_company
from mailroom.crm.notes import add_note, add_task
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, Record, User
from mailroom.errors import AuthenticationError
from mailroom.matching.rulebook import add_rule
from mailroom.sync.health import record_failure
from mailroom_testing.builders import build_message
from tests.conftest_web import LiveServer, Tenant, seed_tenant
from tests.e2e.test_dashboard import SHOTS, TIMEOUT, browser, sign_in
from tests.helpers.more_mail import deliver

__all__ = ["browser"]  # the fixture, imported for this module's tests

SCROLL = "[document.scrollingElement.scrollWidth, window.innerWidth]"
LONG = "averyveryverylongunbrokenwordthatalonewouldneedmorethanthreehundredandninetypixels"


def seed(live_server: LiveServer) -> Tenant:
    """A company with something on every page, long words included."""
    app = live_server.app
    tenant = seed_tenant(app, "Alpha")
    deliver(
        app,
        tenant.mailbox_id,
        build_message(
            sender=f"Ann Prospect <ann.{LONG[:40]}@prospect-{LONG[:30]}.example>",
            to=tenant.admin,
            subject=f"Pricing for {LONG}",
            body=f"See https://prospect.example/{LONG}/{LONG}?q={LONG}",
        ),
    )
    with transaction(app.sessions) as session:
        company = get_company(session, "Alpha")
        add_rule(
            session,
            company=company,
            name=f"ignore-{LONG[:40]}",
            action="ignore",
            conditions={"to": f"@{LONG[:60]}.example"},
            description=f"Mail to {LONG} is never logged",
        )
        admin = session.scalars(select(User).where(User.email == tenant.admin)).one()
        record = session.get(Record, tenant.contact_id)
        assert record is not None
        record.fields = {"title": LONG, "custom": {"long_field_name": LONG}}
        add_note(session, record=record, author_id=admin.id, text=LONG, message_id=None)
        add_task(
            session,
            record=record,
            title=f"Call back about {LONG}",
            due=date(2026, 1, 2),
            assignee_id=admin.id,
            created_by=admin.id,
            message_id=None,
        )
        mailbox = session.get(Mailbox, tenant.mailbox_id)
        assert mailbox is not None
        record_failure(session, mailbox, AuthenticationError(f"refused the login {LONG}"))
    return tenant


def pages(tenant: Tenant) -> list[tuple[str, str]]:
    """(screenshot name, path) for every page an admin reaches."""
    return [
        ("records", "/records"),
        ("records-opportunities", "/records?type=opportunity"),
        ("record-new", "/records/new"),
        ("record-contact", f"/records/contact/{tenant.contact_id}"),
        ("record-account", f"/records/account/{tenant.account_id}"),
        ("message", f"/messages/{tenant.message_ids[-1]}"),
        ("unmatched", "/unmatched"),
        ("unmatched-domains", "/unmatched?group=domain"),
        ("tasks", "/tasks"),
        ("mailboxes", "/mailboxes"),
        ("mailbox-settings", f"/mailboxes/{tenant.mailbox_id}/settings"),
        ("mailbox-errors", f"/mailboxes/{tenant.mailbox_id}/errors"),
        ("compose", f"/compose?reply={tenant.message_ids[0]}"),
        ("account", "/account"),
        ("admin-users", "/admin/users"),
        ("admin-mailboxes", "/admin/mailboxes"),
        ("admin-settings", "/admin/settings"),
        ("admin-rules", "/admin/rules"),
        ("admin-rule-edit", f"/admin/rules/ignore-{LONG[:40]}/edit"),
        ("admin-blocklist", "/admin/blocklist"),
        ("admin-dropbox", "/admin/dropbox"),
        ("admin-aliases", "/admin/aliases"),
        ("error-not-found", "/records/contact/999999"),
    ]


def test_every_page_fits_a_390_px_phone_and_shows_times_in_the_browsers_zone(
    live_server: LiveServer, browser: object, fast_hashing: None
) -> None:
    tenant = seed(live_server)
    folder = SHOTS / "phone-width"
    folder.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{url}/signin")
    scroll, inner = page.evaluate(SCROLL)
    assert scroll <= inner, "the sign-in page scrolls sideways"
    sign_in(page, url, tenant.admin)
    zone = None
    for _ in range(100):  # the browser reports its zone from the first page
        with live_server.app.sessions() as session:  # (a read holds SQLite's lock: short)
            zone = session.scalars(select(User.time_zone).where(User.email == tenant.admin)).one()
        if zone:
            break
        page.wait_for_timeout(100)
    assert zone == "Asia/Tokyo"
    with live_server.app.sessions() as session:
        first = session.get(Message, tenant.message_ids[0])
        assert first is not None and first.date_utc is not None
        sent = first.date_utc.replace(tzinfo=first.date_utc.tzinfo or UTC)
    page.goto(f"{url}/messages/{tenant.message_ids[0]}")
    tokyo = sent.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    assert tokyo in page.locator("main").inner_text()
    assert sent.astimezone(UTC).strftime("%Y-%m-%d %H:%M") != tokyo

    wide = []
    for name, path in pages(tenant):
        page.set_viewport_size({"width": 1280, "height": 900})
        answer = page.goto(f"{url}{path}")
        assert answer is not None and (answer.ok or name.startswith("error")), (path, answer)
        page.screenshot(path=str(folder / f"{name}-desktop.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(50)  # a relayout after the resize
        scroll, inner = page.evaluate(SCROLL)
        page.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)
        if scroll > inner:
            wide.append((path, scroll))
    page.goto(f"{url}/signin")  # signed in: the sign-in page still fits
    assert not wide, f"pages that scroll sideways at 390 px: {wide}"
    context.close()
