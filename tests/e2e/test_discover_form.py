"""The connect form in real headless Chromium (issue 12 item 6, issue 13's preset bug):
typing an address and "Find settings" fill the servers from the local autoconfig and DNS
servers, an OAuth provider shows its sign-in hint, and the provider dropdown sets every
server field (Any other server after Gmail leaves no smtp.gmail.com; POP3 gets 995)."""

from __future__ import annotations

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom_testing.dns_server import DnsServer
from tests.conftest_discovery import AutoconfigServer, autoconfig_domain, fresh_domain
from tests.conftest_web import PASSWORD, LiveServer
from tests.e2e.test_dashboard import TIMEOUT, browser, shot, sign_in

__all__ = ["browser"]


def _values(page: object, *ids: str) -> list[str]:
    return [page.input_value(f"#{i}") for i in ids]  # type: ignore[attr-defined]


def test_find_settings_and_presets_fill_the_connect_form_in_chromium(
    live_server: LiveServer,
    discovery_app: App,
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    browser: object,
) -> None:
    assert live_server.app is discovery_app
    with transaction(discovery_app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        add_user(session, company=company, email="ann@acme.example", password=PASSWORD)
    domain = autoconfig_domain(dns_server, autoconfig_server)
    google_domain = fresh_domain()
    dns_server.add(google_domain, "MX", "1 smtp.google.com.")
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, "ann@acme.example")
    page.goto(f"{url}/mailboxes")

    # Issue 13: the dropdown sets every field, for the chosen protocol.
    page.select_option("#preset", "gmail")
    assert _values(page, "host", "port", "smtp_host") == ["imap.gmail.com", "993", "smtp.gmail.com"]
    assert "Sign in with Google" in page.inner_text("#discover-oauth")
    page.select_option("#protocol", "pop3")
    assert _values(page, "host", "port", "security") == ["pop.gmail.com", "995", "ssl"]
    page.select_option("#preset", "custom")
    assert _values(page, "host", "port", "smtp_host") == ["", "995", ""]
    assert page.is_hidden("#discover-oauth")
    page.select_option("#protocol", "imap")
    assert _values(page, "port") == ["993"]

    # An autoconfig domain: typing the address and leaving the field looks it up.
    page.fill("#discover_email", f"ann@{domain}")
    page.press("#discover_email", "Tab")
    page.locator("#discover-result", has_text="Found by").wait_for()
    assert _values(page, "host", "port", "security") == [f"imap.{domain}", "993", "ssl"]
    assert _values(page, "smtp_host", "smtp_port", "smtp_security") == [
        f"smtp.{domain}",
        "587",
        "starttls",
    ]
    assert _values(page, "username") == [f"ann@{domain}"]
    assert "autoconfig" in page.inner_text("#discover-result")
    assert page.is_hidden("#discover-oauth")
    shot(page, "discover-autoconfig")

    # A Google-hosted domain (MX): the Gmail preset and the sign-in hint; no page load.
    page.fill("#discover_email", f"bo@{google_domain}")
    page.click("#discover-button")
    page.locator("#discover-result[data-oauth=google]").wait_for(state="attached")
    assert page.input_value("#preset") == "gmail"
    assert _values(page, "host", "smtp_host") == ["imap.gmail.com", "smtp.gmail.com"]
    assert page.is_visible("#discover-oauth")
    assert "Sign in with Google" in page.inner_text("#discover-oauth")
    assert page.url == f"{url}/mailboxes"
    shot(page, "discover-google")
