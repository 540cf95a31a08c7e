"""The connect form's "Find settings" without JavaScript and through the page's JSON
(issue 12 item 6): the page comes back with the servers filled in and the sign-in hint;
the password typed is never echoed; the answer's source is shown."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.web.app import create_web_app
from mailroom_testing.dns_server import DnsServer
from tests.conftest_discovery import AutoconfigServer, autoconfig_domain, fresh_domain
from tests.conftest_web import seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN


@pytest.fixture
def page(discovery_app: App, fast_hashing: None) -> tuple[TestClient, str]:
    tenant = seed_tenant(discovery_app, "Alpha")
    client = TestClient(create_web_app(discovery_app))
    return client, sign_in(client, tenant.member)


def _value(html: str, name: str) -> str:
    found = re.search(rf'<input name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"no input {name}"
    return found.group(1)


def _selected(html: str, select_id: str) -> str:
    block = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    found = re.search(r'<option value="([^"]+)"[^>]*selected', block)
    assert found, f"nothing selected in {select_id}"
    return found.group(1)


def test_find_settings_without_javascript_fills_the_form_and_never_echoes_the_password(
    page: tuple[TestClient, str], dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    client, csrf = page
    domain = autoconfig_domain(dns_server, autoconfig_server)
    response = client.post(
        "/mailboxes/discover",
        data={
            "csrf_token": csrf,
            "discover_email": f"ann@{domain}",
            "protocol": "imap",
            "host": "",
            "port": "993",
            "password": "typed-secret-123",
            "smtp_host": "smtp.gmail.com",
            "aliases": "sales@" + domain,
        },
        headers=ORIGIN,
    )
    assert response.status_code == 200
    html = response.text
    assert _value(html, "host") == f"imap.{domain}"
    assert _value(html, "port") == "993"
    assert _selected(html, "security") == "ssl"
    assert _value(html, "smtp_host") == f"smtp.{domain}"
    assert _value(html, "smtp_port") == "587"
    assert _selected(html, "smtp_security") == "starttls"
    assert _value(html, "username") == f"ann@{domain}"
    assert _value(html, "aliases") == f"sales@{domain}"
    assert _selected(html, "preset") == "custom"
    assert "Found by autoconfig" in html
    assert "typed-secret-123" not in html


def test_find_settings_for_a_microsoft_365_domain_picks_the_preset_and_shows_the_sign_in(
    page: tuple[TestClient, str], dns_server: DnsServer
) -> None:
    client, csrf = page
    domain = fresh_domain()
    dns_server.add(domain, "MX", "0 contoso.mail.protection.outlook.com.")
    response = client.post(
        "/mailboxes/discover",
        data={"csrf_token": csrf, "discover_email": f"bo@{domain}", "protocol": "pop3"},
        headers=ORIGIN,
    )
    html = response.text
    assert _selected(html, "preset") == "microsoft365"
    assert _selected(html, "protocol") == "pop3"
    assert (_value(html, "host"), _value(html, "port")) == ("outlook.office365.com", "995")
    assert _value(html, "smtp_host") == "smtp.office365.com"
    assert 'data-oauth="microsoft"' in html
    assert "Sign in with Microsoft" in html


def test_find_settings_answers_json_to_the_page_script_and_needs_the_csrf_token(
    page: tuple[TestClient, str],
) -> None:
    client, csrf = page
    asked = {"discover_email": "cy@icloud.com"}
    json_headers = {**ORIGIN, "Accept": "application/json"}
    response = client.post(
        "/mailboxes/discover", data={"csrf_token": csrf, **asked}, headers=json_headers
    )
    assert response.status_code == 200
    found = response.json()
    assert (found["provider"], found["pop3"], found["smtp"]["host"]) == (
        "icloud",
        None,
        "smtp.mail.me.com",
    )
    refused = client.post("/mailboxes/discover", data=asked, headers=json_headers)
    assert refused.status_code == 403


def test_nothing_found_keeps_the_form_and_says_to_enter_the_servers_by_hand(
    page: tuple[TestClient, str],
) -> None:
    client, csrf = page
    domain = fresh_domain()
    response = client.post(
        "/mailboxes/discover",
        data={"csrf_token": csrf, "discover_email": f"dee@{domain}"},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    assert f"No settings found for dee@{domain}" in response.text
    assert "by hand" in response.text


def test_the_presets_carry_pop3_and_oauth_for_the_form_script(
    page: tuple[TestClient, str],
) -> None:
    client, _csrf = page
    html = client.get("/mailboxes").text
    gmail = re.search(r'<option value="gmail"[^>]*>', html)
    assert gmail is not None
    tag = gmail.group(0)
    for attribute in (
        'data-pop3-host="pop.gmail.com"',
        'data-pop3-port="995"',
        'data-oauth="google"',
        'data-smtp-host="smtp.gmail.com"',
    ):
        assert attribute in tag
    custom = re.search(r'<option value="custom"[^>]*>', html)
    assert custom is not None and 'data-smtp-host=""' in custom.group(0)
