"""`GET /api/v1/discover?email=…` (issue 12 item 6): the same JSON as the CLI's --json,
Bearer auth, 422 for a malformed address, the web host policy on the autoconfig host, and
a lookup counted in the per-minute connection-test limit."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.services.host_policy import TESTS_PER_MINUTE
from mailroom.web.app import create_web_app
from mailroom_testing.dns_server import DnsServer
from tests.conftest_discovery import AutoconfigServer, autoconfig_domain, fresh_domain
from tests.conftest_web import seed_tenant


@pytest.fixture
def api(discovery_app: App, fast_hashing: None) -> tuple[TestClient, dict[str, str]]:
    tenant = seed_tenant(discovery_app, "Alpha")
    client = TestClient(create_web_app(discovery_app))
    return client, {"Authorization": f"Bearer {tenant.member_token}"}


def test_discover_answers_the_srv_servers_with_their_source(
    api: tuple[TestClient, dict[str, str]], dns_server: DnsServer
) -> None:
    client, auth = api
    domain = fresh_domain()
    dns_server.add(f"_imaps._tcp.{domain}", "SRV", f"0 1 993 mail.{domain}.")
    dns_server.add(f"_submissions._tcp.{domain}", "SRV", f"0 1 465 mail.{domain}.")
    response = client.get("/api/v1/discover", params={"email": f"ann@{domain}"}, headers=auth)
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["source"], found["detail"]) == (
        "srv",
        f"SRV _imaps._tcp.{domain}, _submissions._tcp.{domain}",
    )
    assert found["smtp"] == {"host": f"mail.{domain}", "port": 465, "security": "ssl"}


def test_discover_names_the_oauth_provider_for_the_sign_in_button(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = api
    response = client.get("/api/v1/discover", params={"email": "jo@outlook.com"}, headers=auth)
    found = response.json()
    assert (found["source"], found["provider"], found["oauth"]) == (
        "preset",
        "outlook",
        "microsoft",
    )


def test_discover_needs_a_token_and_a_well_formed_address(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = api
    assert client.get("/api/v1/discover", params={"email": "a@gmail.com"}).status_code == 401
    bad = client.get("/api/v1/discover", params={"email": "a@@"}, headers=auth)
    assert bad.status_code == 422 and "not an email address" in bad.json()["message"]


def test_discover_from_the_api_never_fetches_autoconfig_from_a_private_address(
    api: tuple[TestClient, dict[str, str]],
    discovery_app: App,
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
) -> None:
    client, auth = api
    discovery_app.settings = dataclasses.replace(discovery_app.settings, allow_private_hosts=False)
    domain = autoconfig_domain(dns_server, autoconfig_server)
    response = client.get("/api/v1/discover", params={"email": f"bo@{domain}"}, headers=auth)
    assert response.status_code == 200
    found = response.json()
    assert found["found"] is False
    notes = [n for t in found["tried"] for n in t["notes"]]
    assert any("127.0.0.1, a loopback address" in n for n in notes), notes
    assert (f"autoconfig.{domain}", "/mail/config-v1.1.xml") not in autoconfig_server.requests


def test_network_lookups_count_in_the_per_minute_limit_and_presets_do_not(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = api
    domain = fresh_domain()
    for _ in range(TESTS_PER_MINUTE):
        ok = client.get("/api/v1/discover", params={"email": f"cy@{domain}"}, headers=auth)
        assert ok.status_code == 200
    refused = client.get("/api/v1/discover", params={"email": f"cy@{domain}"}, headers=auth)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    preset = client.get("/api/v1/discover", params={"email": "cy@gmail.com"}, headers=auth)
    assert preset.status_code == 200 and preset.json()["provider"] == "gmail"
