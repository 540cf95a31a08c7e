"""`mailroom mailbox discover EMAIL [--json]` through the installed command (issue 12's
contract): the servers and the source that gave them, from the local DNS and autoconfig
servers the test points it at (MAILROOM_DNS_SERVER, MAILROOM_AUTOCONFIG_HTTP_PORT); exit 1
with a clear message when nothing is found. It needs no data dir: no `init` first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mailroom_testing.dns_server import DnsServer
from tests.conftest_discovery import AutoconfigServer, autoconfig_domain, fresh_domain

MAILROOM = str(Path(sys.executable).with_name("mailroom"))


def run(
    tmp_path: Path, dns: DnsServer, web: AutoconfigServer, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {"MAILROOM_DNS_SERVER": dns.address, "MAILROOM_AUTOCONFIG_HTTP_PORT": str(web.port)}
    return subprocess.run(
        [MAILROOM, "--data-dir", str(tmp_path / "data"), "mailbox", "discover", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_discover_json_gives_the_autoconfig_servers_and_their_source(
    tmp_path: Path, dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    domain = autoconfig_domain(dns_server, autoconfig_server)
    result = run(tmp_path, dns_server, autoconfig_server, f"ann@{domain}", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["found"], found["source"]) == (True, "autoconfig")
    assert found["imap"] == {"host": f"imap.{domain}", "port": 993, "security": "ssl"}
    assert found["smtp"] == {"host": f"smtp.{domain}", "port": 587, "security": "starttls"}
    assert found["oauth"] is None


def test_discover_prints_the_servers_the_source_and_the_sign_in_for_a_google_mx(
    tmp_path: Path, dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    domain = fresh_domain()
    dns_server.add(domain, "MX", "1 smtp.google.com.")
    result = run(tmp_path, dns_server, autoconfig_server, f"bo@{domain}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Found by mx: MX host smtp.google.com (Gmail / Google Workspace)"
    assert "  IMAP  imap.gmail.com:993 ssl" in lines
    assert "  POP3  pop.gmail.com:995 ssl" in lines
    assert "  SMTP  smtp.gmail.com:465 ssl" in lines
    assert "--oauth google" in result.stdout


def test_discover_with_nothing_found_exits_1_with_what_was_tried_and_the_fix(
    tmp_path: Path, dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    domain = fresh_domain()
    plain = run(tmp_path, dns_server, autoconfig_server, f"cy@{domain}")
    as_json = run(tmp_path, dns_server, autoconfig_server, f"cy@{domain}", "--json")
    assert plain.returncode == 1 and as_json.returncode == 1
    assert f"No mail server settings found for cy@{domain}" in plain.stderr
    assert "Fix: Enter the servers by hand" in plain.stderr
    assert plain.stdout == ""
    found = json.loads(as_json.stdout)
    assert found["found"] is False and [t["source"] for t in found["tried"]] == [
        "preset",
        "autoconfig",
        "srv",
        "mx",
    ]


def test_discover_refuses_a_malformed_address_with_exit_1(
    tmp_path: Path, dns_server: DnsServer, autoconfig_server: AutoconfigServer
) -> None:
    result = run(tmp_path, dns_server, autoconfig_server, "not-an-address")
    assert result.returncode == 1
    assert "is not an email address" in result.stderr
