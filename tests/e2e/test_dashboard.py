"""The dashboard end to end in real headless Chromium, against the real Dovecot.

Needs Debian's `chromium` (/usr/bin/chromium) and Playwright for Python (no downloaded
browsers). Screenshots of the main pages go to test-output/screenshots/.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.memory_source import MemorySource
from tests.conftest_smtp import SmtpTestServer
from tests.conftest_web import PASSWORD, LiveServer, seed_tenant

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT = 30_000


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def sign_in(page: object, url: str, email: str) -> None:
    page.goto(f"{url}/signin")  # type: ignore[attr-defined]
    page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{url}/records")  # type: ignore[attr-defined]


HTML_MAIL = (
    "<h2>Our offer</h2><p>Dear Ann, here is the <b>offer</b> you asked for.</p>"
    "<p><img src='https://images.example/banner.png' alt='banner'></p>"
)


def test_connect_sync_read_reply_add_a_rule_and_fix_a_bad_password_in_chromium(
    live_server: LiveServer,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    browser: object,
) -> None:
    app = live_server.app
    username, password = imap_user
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        add_user(session, company=company, email="ann@acme.example", admin=True, password=PASSWORD)
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo Client",
            emails=[EmailField("main", "jo@client.example")],
        )
    dovecot.append(
        username,
        "INBOX",
        build_message(
            sender="Jo Client <jo@client.example>",
            to="ann@acme.example",
            subject="Offer for Acme",
            body="Dear Ann, here is the offer.",
            html=HTML_MAIL,
            attachment=("offer.pdf", b"%PDF-1.4 offer"),
        ),
    )
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, "ann@acme.example")
    shot(page, "01-records")

    # Connect: a wrong password first — the test shows the error and its fix.
    page.goto(f"{url}/mailboxes")
    page.select_option("#preset", "custom")
    page.fill("#host", dovecot.host)
    page.fill("#port", str(dovecot.imaps_port))
    page.select_option("#security", "ssl")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "not-the-password")
    page.check("input[name=allow_self_signed]")
    page.click("text=Test connection")
    failed = page.locator("#test-result .error")
    failed.wait_for()
    assert "Test failed" in failed.inner_text() and "Fix:" in failed.inner_text()
    shot(page, "02-bad-password")
    page.click("#connect-button")  # Connect re-tests on the server and refuses to save
    page.locator(".error").first.wait_for()
    assert "Fix:" in page.locator("#connect .error").inner_text()
    assert page.locator(".mailbox").count() == 0

    # The right password: test passes, folders to choose from, connect, first sync.
    page.fill("input[name=password]", password)
    page.check("input[name=allow_self_signed]")
    page.click("text=Test connection")
    page.locator("#test-result .ok").wait_for()
    assert page.locator("input[name=folder][value=INBOX]").is_checked()
    shot(page, "03-test-ok")
    page.click("#connect-button")
    page.wait_for_url(f"{url}/mailboxes?notice=connected")
    page.locator(".mailbox .badge.ok").wait_for()
    page.click("text=Sync now")
    page.locator(".mailbox .badge.ok").wait_for()
    shot(page, "04-mailboxes")

    # Open the contact, see the synced mail on its timeline, read it.
    page.goto(f"{url}/records")
    page.fill("input[name=q]", "client.example")
    page.locator("#record-rows a", has_text="Jo Client").click()
    page.locator(".entry .subject", has_text="Offer for Acme").wait_for()
    assert "their address" in page.locator(".entry").first.inner_text()
    shot(page, "05-record")
    page.click("text=Offer for Acme")
    frame = page.frame_locator("iframe.body")
    assert "here is the offer you asked for" in frame.locator("body").inner_text()
    assert "1 remote image blocked" in page.locator(".images-note").inner_text()
    assert page.locator(".attachments a", has_text="offer.pdf").count() == 1
    shot(page, "06-message")

    # Set how the mailbox sends (SMTP) on its settings page, tested before it is saved.
    page.goto(f"{url}/mailboxes")
    page.click("text=Settings and password")
    page.fill("#smtp_host", "127.0.0.1")
    page.fill("#smtp_port", str(smtp.starttls_port))
    page.select_option("#smtp_security", "starttls")
    page.fill("input[name=smtp_username]", smtp.username)
    page.fill("input[name=smtp_password]", "not-the-smtp-password")
    page.click("#smtp-save")
    assert "Fix:" in page.locator("#smtp .error").inner_text()
    page.fill("input[name=smtp_password]", smtp.password)
    page.click("#smtp-save")
    page.locator("text=SMTP settings saved").wait_for()
    page.click("text=Test IMAP and SMTP")
    assert "SMTP: logged in to 127.0.0.1" in page.locator("#test").inner_text()
    shot(page, "13-mailbox-settings")

    # Reply to the synced mail; the reply arrives and is on the contact's timeline at once.
    page.goto(f"{url}/records")
    page.fill("input[name=q]", "client.example")
    page.locator("#record-rows a", has_text="Jo Client").click()
    page.click("text=Offer for Acme")
    page.click("#reply-button")
    assert page.locator("#to").input_value() == "jo@client.example"
    page.fill("#text", "Thank you, Jo. We accept the offer.")
    shot(page, "14-reply")
    page.click("#send-button")
    page.locator("text=Sent. It is on the timeline.").wait_for()
    (arrived,) = smtp.messages
    assert arrived.rcpt_tos == ["jo@client.example"] and b"We accept the offer" in arrived.data
    page.goto(f"{url}/records")
    page.fill("input[name=q]", "client.example")
    page.locator("#record-rows a", has_text="Jo Client").click()
    reply = page.locator(".entry", has_text="Re: Offer for Acme")
    reply.wait_for()
    assert "outbound" in (reply.get_attribute("class") or "")
    shot(page, "15-record-with-reply")

    # Add a rule on the rules page: try it on recent mail first (nothing changes), then add.
    page.goto(f"{url}/admin/rules")
    page.fill("#rule-name", "offers-to-cases")
    page.fill("#cond-subject_contains", "Offer")
    page.select_option("#rule-action", "create-case")
    page.click("#rule-test")
    trial = page.locator("#trial")
    trial.wait_for()
    assert "nothing was changed" in trial.inner_text()
    assert "would create a case" in trial.inner_text()
    page.click("#rule-add")
    page.locator("text=Rule added.").wait_for()
    assert page.locator("tr.rule[data-name=offers-to-cases]").count() == 1
    shot(page, "16-admin-rules")
    page.goto(f"{url}/admin/blocklist")
    shot(page, "17-admin-blocklist")
    page.goto(f"{url}/admin/dropbox")
    assert page.locator("#drop-address").inner_text().startswith("log+")
    shot(page, "18-admin-dropbox")

    # The server's password changes: Sync now shows the error and its fix on the mailbox.
    dovecot.add_user(username, "a-new-password-1")
    page.goto(f"{url}/mailboxes")
    page.click("text=Sync now")
    badge = page.locator(".mailbox .badge.error, .mailbox .badge.failed")
    badge.wait_for()
    error = page.locator(".mailbox div.error").inner_text()
    assert "Fix:" in error
    shot(page, "07-mailbox-error")
    page.click("text=Error log")
    assert page.locator("tbody tr").count() >= 1
    shot(page, "08-error-log")
    page.goto(f"{url}/admin/mailboxes")
    shot(page, "09-admin-mailboxes")
    page.goto(f"{url}/admin/settings")
    shot(page, "10-admin-settings")
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    page.goto(f"{url}/records")
    shot(page, "11-records-phone")


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    _Counter.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counter.hits
    finally:
        server.shutdown()


def xss_mail(base: str) -> str:
    js = f"fetch('{base}/js')"
    return "".join(
        [
            f"<script>{js}</script>",
            f'<img src=x onerror="{js}">',
            f"<img src='{base}/img'>",
            f'<a id=jslink href="javascript:{js}">js link</a>',
            f'<a id=datalink href="data:text/html,<script>{js}</script>">data link</a>',
            f"<svg onload=\"{js}\"><image href='{base}/svg'/></svg>",
            f'<div style="background:url({base}/css)">styled</div>',
            f"<style>body{{background:url({base}/style)}}</style>",
            f"<link rel=stylesheet href='{base}/link'>",
            f"<iframe src='{base}/iframe'></iframe>",
            f"<video poster='{base}/poster'></video>",
            f"<table background='{base}/bg'><tr><td>cell</td></tr></table>",
            f"<form action='{base}/form'><button id=formbutton>go</button></form>",
            "<p>visible text</p>",
        ]
    )


def test_html_mail_runs_no_script_and_sends_no_request_in_chromium(
    live_server: LiveServer, browser: object, listener: tuple[str, list[str]]
) -> None:
    base, hits = listener
    tenant = seed_tenant(live_server.app, "Alpha")
    source = MemorySource()
    source.folders["INBOX"].uidnext = 1000
    source.folders["INBOX"].append(
        build_message(
            sender="jo@client-alpha.example",
            to=tenant.admin,
            subject="Attack",
            html=xss_mail(base),
        )
    )
    assert (
        sync_mailbox(live_server.app, tenant.mailbox_id, opener=lambda _m, _a: source).error is None
    )
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server.url, tenant.admin)
    page.goto(f"{live_server.url}/records/contact/{tenant.contact_id}")
    page.click("text=Attack")
    frame = page.frame_locator("iframe.body")
    assert "visible text" in frame.locator("body").inner_text()
    for link in ("#jslink", "#datalink", "#formbutton"):
        if frame.locator(link).count():
            frame.locator(link).click(timeout=5000, no_wait_after=True)
    page.wait_for_timeout(1500)  # give any stray request time to arrive (not an assertion)
    shot(page, "12-xss-message")
    assert hits == [] and dialogs == []
    # The listener does count: asking for remote images lets exactly the image through.
    page.click("text=Show remote images")
    page.frame_locator("iframe.body").locator("body").wait_for()
    page.wait_for_timeout(1500)
    assert hits == ["/img"]
