"""Provider discovery against a real local DNS server and a real HTTP server: each source
(preset, autoconfig, SRV, MX), their order, the deadline, the size bound and the host
policy on the autoconfig host (issue 12 item 6)."""

from __future__ import annotations

import dataclasses
import socket
import threading
from typing import Any

import pytest

from mailroom.connectors.autoconfig import MAX_BYTES
from mailroom.errors import BadInput
from mailroom.services.discovery import DiscoveryOptions, discover
from mailroom.services.host_policy import OPERATOR, HostPolicy
from mailroom_testing.dns_server import DnsServer
from tests.conftest_discovery import (
    AUTOCONFIG_XML,
    AutoconfigServer,
    autoconfig_domain,
    fresh_domain,
)

WEB = HostPolicy(allow_private=False, quiet_greetings=True)


def _notes(found: dict[str, Any], source: str) -> str:
    return " | ".join(n for t in found["tried"] if t["source"] == source for n in t["notes"])


def test_an_address_at_a_preset_domain_gets_the_preset_without_any_lookup(
    dns_server: DnsServer, discovery_options: DiscoveryOptions
) -> None:
    before = len(dns_server.asked)
    found = discover(email="ann@gmail.com", network=OPERATOR, options=discovery_options)
    assert found["source"] == "preset" and found["provider"] == "gmail"
    assert found["oauth"] == "google"
    assert found["imap"] == {"host": "imap.gmail.com", "port": 993, "security": "ssl"}
    assert found["pop3"] == {"host": "pop.gmail.com", "port": 995, "security": "ssl"}
    assert found["smtp"] == {"host": "smtp.gmail.com", "port": 465, "security": "ssl"}
    assert len(dns_server.asked) == before


def test_the_autoconfig_document_gives_imap_pop3_and_smtp_with_placeholders_filled(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    found = discover(email=f"ann@{domain}", network=OPERATOR, options=discovery_options)
    assert found["source"] == "autoconfig"
    assert found["detail"].startswith(f"http://autoconfig.{domain}:")
    assert found["imap"] == {"host": f"imap.{domain}", "port": 993, "security": "ssl"}
    assert found["pop3"] == {"host": f"pop.{domain}", "port": 995, "security": "ssl"}
    assert found["smtp"] == {"host": f"smtp.{domain}", "port": 587, "security": "starttls"}
    assert found["username"] == f"ann@{domain}"
    assert found["oauth"] is None


def test_the_well_known_autoconfig_is_tried_when_the_autoconfig_host_has_none(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = fresh_domain()
    dns_server.add(domain, "A", "127.0.0.1")  # no autoconfig.DOMAIN at all
    body = AUTOCONFIG_XML.format(domain=domain, name="Known").encode()
    autoconfig_server.publish(domain, "/.well-known/autoconfig/mail/config-v1.1.xml", body)
    found = discover(email=f"bo@{domain}", network=OPERATOR, options=discovery_options)
    assert found["source"] == "autoconfig"
    assert found["detail"].endswith("/.well-known/autoconfig/mail/config-v1.1.xml")
    assert "no such name" in _notes(found, "autoconfig")


def test_srv_records_give_the_servers_with_implicit_tls_preferred(
    dns_server: DnsServer, discovery_options: DiscoveryOptions
) -> None:
    domain = fresh_domain()
    dns_server.add(f"_imap._tcp.{domain}", "SRV", f"0 1 143 mail.{domain}.")
    dns_server.add(
        f"_imaps._tcp.{domain}", "SRV", f"10 1 993 backup.{domain}.", f"5 1 993 mail.{domain}."
    )
    dns_server.add(f"_pop3._tcp.{domain}", "SRV", "0 0 0 .")  # RFC 6186: not offered
    dns_server.add(f"_submission._tcp.{domain}", "SRV", f"0 1 587 smtp.{domain}.")
    found = discover(email=f"cy@{domain}", network=OPERATOR, options=discovery_options)
    assert found["source"] == "srv"
    assert found["imap"] == {"host": f"mail.{domain}", "port": 993, "security": "ssl"}
    assert found["pop3"] is None
    assert found["smtp"] == {"host": f"smtp.{domain}", "port": 587, "security": "starttls"}


def test_srv_target_dot_alone_finds_nothing(
    dns_server: DnsServer, discovery_options: DiscoveryOptions
) -> None:
    domain = fresh_domain()
    for name in ("_imaps", "_imap", "_pop3s", "_pop3"):
        dns_server.add(f"{name}._tcp.{domain}", "SRV", "0 0 0 .")
    found = discover(email=f"dee@{domain}", network=OPERATOR, options=discovery_options)
    assert not found["found"]
    assert "not offered" in _notes(found, "srv")


@pytest.mark.parametrize(
    ("mx", "provider", "oauth", "imap_host"),
    [
        ("10 aspmx.l.google.com.", "gmail", "google", "imap.gmail.com"),
        (
            "0 acme-example.mail.protection.outlook.com.",
            "microsoft365",
            "microsoft",
            "outlook.office365.com",
        ),
    ],
)
def test_a_domain_whose_mx_is_google_or_microsoft_gets_that_preset_and_sign_in(
    dns_server: DnsServer,
    discovery_options: DiscoveryOptions,
    mx: str,
    provider: str,
    oauth: str,
    imap_host: str,
) -> None:
    domain = fresh_domain()
    dns_server.add(domain, "MX", "20 mx.backup.example.", mx)
    found = discover(email=f"eve@{domain}", network=OPERATOR, options=discovery_options)
    assert (found["source"], found["provider"], found["oauth"]) == ("mx", provider, oauth)
    assert found["imap"]["host"] == imap_host
    assert found["username"] == f"eve@{domain}"


def test_an_unknown_mx_host_finds_nothing_and_says_what_to_do(
    dns_server: DnsServer, discovery_options: DiscoveryOptions
) -> None:
    domain = fresh_domain()
    dns_server.add(domain, "MX", "10 mx.self-hosted.example.")
    found = discover(email=f"fay@{domain}", network=OPERATOR, options=discovery_options)
    assert found["found"] is False and found["source"] is None and found["imap"] is None
    assert "by hand" in found["hint"]
    assert "no known provider" in _notes(found, "mx")


def test_sources_answer_in_order_autoconfig_then_srv_then_mx(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    dns_server.add(f"_imaps._tcp.{domain}", "SRV", f"0 1 993 srv-imap.{domain}.")
    dns_server.add(domain, "MX", "10 aspmx.l.google.com.")
    first = discover(email=f"gus@{domain}", network=OPERATOR, options=discovery_options)
    assert first["source"] == "autoconfig"
    autoconfig_server.publish(f"autoconfig.{domain}", "/mail/config-v1.1.xml", b"", 404)
    second = discover(email=f"gus@{domain}", network=OPERATOR, options=discovery_options)
    assert (second["source"], second["imap"]["host"]) == ("srv", f"srv-imap.{domain}")
    dns_server.records.pop((f"_imaps._tcp.{domain}", "SRV"))
    third = discover(email=f"gus@{domain}", network=OPERATOR, options=discovery_options)
    assert (third["source"], third["oauth"]) == ("mx", "google")


def test_an_autoconfig_naming_gmail_servers_gets_the_google_sign_in(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = fresh_domain()
    dns_server.add(f"autoconfig.{domain}", "A", "127.0.0.1")
    body = (
        AUTOCONFIG_XML.format(domain=domain, name="Workspace")
        .replace("imap.%EMAILDOMAIN%", "imap.gmail.com")
        .encode()
    )
    autoconfig_server.publish(f"autoconfig.{domain}", "/mail/config-v1.1.xml", body)
    found = discover(email=f"hal@{domain}", network=OPERATOR, options=discovery_options)
    assert (found["source"], found["provider"], found["oauth"]) == ("autoconfig", "gmail", "google")


def test_an_oversized_autoconfig_document_is_refused_and_the_next_source_used(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    padding = b"<!-- " + b"x" * MAX_BYTES + b" -->"
    good = autoconfig_server.documents[(f"autoconfig.{domain}", "/mail/config-v1.1.xml")][1]
    autoconfig_server.publish(f"autoconfig.{domain}", "/mail/config-v1.1.xml", good + padding)
    dns_server.add(domain, "MX", "10 aspmx.l.google.com.")
    found = discover(email=f"ida@{domain}", network=OPERATOR, options=discovery_options)
    assert found["source"] == "mx"
    assert f"larger than {MAX_BYTES} bytes" in _notes(found, "autoconfig")


def test_the_web_policy_never_fetches_autoconfig_from_a_private_address(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    found = discover(email=f"jo@{domain}", network=WEB, options=discovery_options)
    assert found["found"] is False
    assert "resolves to 127.0.0.1, a loopback address" in _notes(found, "autoconfig")
    assert all(host != f"autoconfig.{domain}" for host, _path in autoconfig_server.requests)


def test_a_name_server_that_never_answers_ends_at_the_deadline_with_nothing_found(
    silent_dns: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    options = DiscoveryOptions(
        dns_server=("127.0.0.1", silent_dns.port),
        autoconfig_http_port=autoconfig_server.port,
        deadline=1.0,
    )
    answers: list[dict[str, Any]] = []
    worker = threading.Thread(
        target=lambda: answers.append(
            discover(email="kim@dead-dns.test", network=OPERATOR, options=options)
        )
    )
    worker.start()
    worker.join(60)  # a bound on hanging forever, not a timing assertion
    assert not worker.is_alive() and answers
    assert answers[0]["found"] is False
    assert "no answer within 1 s" in _notes(answers[0], "autoconfig")
    assert silent_dns.asked  # the queries did go out


def test_a_web_server_that_holds_its_answer_does_not_hold_discovery(
    dns_server: DnsServer,
    autoconfig_server: AutoconfigServer,
    discovery_options: DiscoveryOptions,
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    dns_server.add(domain, "MX", "10 aspmx.l.google.com.")
    autoconfig_server.release.clear()
    autoconfig_server.held.add(f"autoconfig.{domain}")
    try:
        options = dataclasses.replace(discovery_options, deadline=1.0)
        found = discover(email=f"lu@{domain}", network=OPERATOR, options=options)
    finally:
        autoconfig_server.release.set()
    assert (found["source"], found["oauth"]) == ("mx", "google")
    assert "no answer within 1 s" in _notes(found, "autoconfig")


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "@acme.test", "ann@", "ann@localhost", "a@b c.test"]
)
def test_a_malformed_address_is_bad_input_before_any_lookup(
    dns_server: DnsServer, discovery_options: DiscoveryOptions, email: str
) -> None:
    before = len(dns_server.asked)
    with pytest.raises(BadInput, match="not an email address"):
        discover(email=email, network=OPERATOR, options=discovery_options)
    assert len(dns_server.asked) == before


def test_a_server_that_is_not_http_fails_the_fetch_without_echoing_its_words(
    dns_server: DnsServer, discovery_options: DiscoveryOptions
) -> None:
    banner = socket.create_server(("127.0.0.1", 0))

    def greet() -> None:
        for _ in range(2):  # the two autoconfig URLs
            conn, _addr = banner.accept()
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6 secret-banner\r\n")
                conn.recv(4096)

    thread = threading.Thread(target=greet, daemon=True)
    thread.start()
    domain = fresh_domain()
    dns_server.add(f"autoconfig.{domain}", "A", "127.0.0.1")
    dns_server.add(domain, "A", "127.0.0.1")
    options = dataclasses.replace(discovery_options, autoconfig_http_port=banner.getsockname()[1])
    try:
        found = discover(email=f"mo@{domain}", network=OPERATOR, options=options)
    finally:
        banner.close()
    notes = _notes(found, "autoconfig")
    assert found["found"] is False
    assert "not an HTTP answer" in notes and "secret-banner" not in notes, notes
