"""Pytest plugin: the local DNS server and autoconfig web server that provider discovery
(services/discovery.py) is tested against. Opt-in: only tests that ask for them start them.

- `dns_server` (session): a real UDP DNS server (mailroom_testing/dns_server.py) answering
  from its `records`; each test adds records under a domain of its own (`fresh_domain`).
- `silent_dns` (session): a DNS server that never answers (the deadline tests).
- `autoconfig_server` (session): a stdlib HTTP server on 127.0.0.1 serving autoconfig
  documents by (Host, path), which discovery reaches through the test-only plain-HTTP
  port; it can hold a host's answer until released (a slow server).
- `discovery_options`: discovery pointed at both; `discovery_app`: the test app whose
  settings say the same (what MAILROOM_DNS_SERVER and MAILROOM_AUTOCONFIG_HTTP_PORT set).
"""

from __future__ import annotations

import dataclasses
import http.server
import secrets
import threading
from collections.abc import Iterator

import pytest

from mailroom.app import App
from mailroom.services.discovery import DiscoveryOptions
from mailroom_testing.dns_server import DnsServer

AUTOCONFIG_XML = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{domain}">
    <domain>{domain}</domain>
    <displayName>{name}</displayName>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.{domain}</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.{domain}</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


def fresh_domain() -> str:
    """A domain no other test uses."""
    return f"d{secrets.token_hex(5)}.test"


class AutoconfigServer:
    """HTTP on 127.0.0.1: `documents[(host, path)] = (status, body)`; every request logged."""

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.held: set[str] = set()  # hosts whose answer waits for `release`
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
                server.requests.append((host, self.path))
                if host in server.held:
                    server.release.wait(30)
                status, body = server.documents.get((host, self.path), (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port: int = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def publish(self, host: str, path: str, body: bytes, status: int = 200) -> None:
        """Serve `body` at http://HOST:PORT/PATH."""
        self.documents[(host, path)] = (status, body)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Release held answers and stop."""
        self.release.set()
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def silent_dns() -> Iterator[DnsServer]:
    server = DnsServer(silent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def autoconfig_server() -> Iterator[AutoconfigServer]:
    server = AutoconfigServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def discovery_options(
    dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> DiscoveryOptions:
    return DiscoveryOptions(
        dns_server=("127.0.0.1", dns_server.port), autoconfig_http_port=autoconfig_server.port
    )


@pytest.fixture
def discovery_app(
    sqlite_app: App, dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> App:
    sqlite_app.settings = dataclasses.replace(
        sqlite_app.settings,
        dns_server=dns_server.address,
        autoconfig_http_port=autoconfig_server.port,
    )
    return sqlite_app


def autoconfig_domain(
    dns_server: DnsServer, autoconfig_server: AutoconfigServer, name: str = "Acme Mail"
) -> str:
    """A fresh domain whose autoconfig.DOMAIN serves a document (IMAP, POP3 and SMTP)."""
    domain = fresh_domain()
    dns_server.add(f"autoconfig.{domain}", "A", "127.0.0.1")
    body = AUTOCONFIG_XML.format(domain=domain, name=name).encode()
    autoconfig_server.publish(f"autoconfig.{domain}", "/mail/config-v1.1.xml", body)
    return domain
