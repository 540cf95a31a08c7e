"""Provider discovery: which servers, ports and security an address's mailbox uses.

One use case for `mailroom mailbox discover EMAIL`, `GET /api/v1/discover` and the
dashboard's connect form (docs/decisions/0015-provider-discovery.md). The sources, in
order (the first that answers wins):

1. a built-in preset for the address's domain (gmail.com → Gmail; connectors.presets):
   no network at all;
2. the domain's Thunderbird autoconfig document (connectors.autoconfig), at
   `https://autoconfig.DOMAIN/…` then `https://DOMAIN/.well-known/autoconfig/…`;
3. RFC 6186 SRV records (`_imaps._tcp`, `_imap._tcp`, `_pop3s._tcp`, `_pop3._tcp`,
   `_submissions._tcp` (RFC 8314), `_submission._tcp`), implicit TLS preferred;
4. the MX host: a domain whose mail goes to Google or Microsoft 365 (or another preset's
   MX hosts) gets that provider's preset and its OAuth sign-in.

Sources 2-4 run at once in threads; the answer is the best one that came in before the
deadline (`DEADLINE` seconds overall), so a dead name server or a slow web server never
holds the form longer. An autoconfig host is resolved once, its addresses are checked
against the caller's host policy (web and API: public addresses only, unless
MAILROOM_ALLOW_PRIVATE_HOSTS=1; it is an SSRF surface) and the fetch connects to the
checked address. A lookup that reaches the network counts as one connection test in the
caller's per-minute limit. The answer says which source gave it and what each source
tried, and never holds a secret.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from mailroom.config import DNS_SERVER_ENV, Settings
from mailroom.connectors import autoconfig
from mailroom.connectors.base import Security
from mailroom.connectors.dns_lookup import Resolver, host_name, parse_server
from mailroom.connectors.presets import (
    CUSTOM,
    ProviderPreset,
    detect_preset,
    preset_for_address,
    preset_for_mx,
)
from mailroom.errors import BadInput, ConfigError
from mailroom.services.host_policy import HostPolicy, non_public_kind

DEADLINE = 5.0
DNS_STEP = 2.0  # at most this long for one DNS lookup
SOURCES = ("preset", "autoconfig", "srv", "mx")
SRV_NAMES = {
    "imap": (("_imaps._tcp", Security.SSL), ("_imap._tcp", Security.STARTTLS)),
    "pop3": (("_pop3s._tcp", Security.SSL), ("_pop3._tcp", Security.STARTTLS)),
    "smtp": (("_submissions._tcp", Security.SSL), ("_submission._tcp", Security.STARTTLS)),
}
NOT_FOUND_HINT = (
    "Enter the servers by hand: your provider's help pages name them (often "
    "imap.DOMAIN port 993 SSL/TLS and smtp.DOMAIN port 465 or 587)."
)


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    """Where discovery looks: the name server, the autoconfig port (tests), the deadline."""

    dns_server: tuple[str, int] | None = None
    autoconfig_http_port: int | None = None  # tests only: plain HTTP on this port
    deadline: float = DEADLINE


@dataclass(slots=True)
class Found:
    """One source's answer: the servers it gave (as JSON) and where they came from."""

    source: str
    detail: str
    servers: dict[str, dict[str, Any] | None]
    preset: ProviderPreset | None = None
    username: str | None = None


@dataclass(slots=True)
class Attempt:
    """What one source did: its answer, or the notes on why it has none."""

    found: Found | None = None
    notes: list[str] = field(default_factory=list)


def options_from(settings: Settings, *, deadline: float = DEADLINE) -> DiscoveryOptions:
    """The discovery options of these settings (`ConfigError` for a bad DNS server)."""
    server = None
    if settings.dns_server:
        try:
            server = parse_server(settings.dns_server)
        except ValueError:
            raise ConfigError(
                f"{DNS_SERVER_ENV} must be an IP address with an optional port "
                f"(127.0.0.1:5353), not {settings.dns_server!r}.",
                hint=f"Fix or unset {DNS_SERVER_ENV}.",
            ) from None
    return DiscoveryOptions(
        dns_server=server, autoconfig_http_port=settings.autoconfig_http_port, deadline=deadline
    )


def discover(*, email: str, network: HostPolicy, options: DiscoveryOptions) -> dict[str, Any]:
    """The servers for `email` and the source that gave them (`found` false if none)."""
    address, domain = _split(email)
    preset = preset_for_address(domain)
    if preset is not None:
        found = Found("preset", f"built-in preset {preset.name}", _preset_servers(preset), preset)
        return _answer(address, domain, found, {"preset": Attempt(found)})
    network.admit()  # one connection test in the caller's per-minute limit
    attempts = {"preset": Attempt(notes=[f"no built-in preset for {domain}"])}
    attempts.update(_run_sources(address, domain, network, options))
    best = next((a.found for a in attempts.values() if a.found is not None), None)
    return _answer(address, domain, best, attempts)


def _split(email: str) -> tuple[str, str]:
    text = email.strip()
    local, at, domain = text.rpartition("@")
    try:
        ascii_domain = domain.strip().lower().encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    checked = host_name(ascii_domain) if "." in ascii_domain else None
    if not at or not local or len(text) > 320 or checked is None:
        raise BadInput(
            f"{text[:100]!r} is not an email address.",
            hint="Type the whole address, e.g. ann@acme.example.",
        )
    return f"{local}@{checked}", checked


def _run_sources(
    address: str, domain: str, network: HostPolicy, options: DiscoveryOptions
) -> dict[str, Attempt]:
    """Autoconfig, SRV and MX at once; each one's attempt, in order, by the deadline."""
    deadline = time.monotonic() + options.deadline
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="discover")
    try:
        futures: dict[str, Future[Attempt]] = {
            "autoconfig": pool.submit(_autoconfig, address, domain, network, options, deadline),
            "srv": pool.submit(_srv, domain, options, deadline),
            "mx": pool.submit(_mx, domain, options, deadline),
        }
        attempts = {}
        for source, future in futures.items():
            try:
                attempts[source] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                attempts[source] = Attempt(notes=[f"no answer within {options.deadline:g} s"])
            if attempts[source].found is not None:
                break  # a better source answered: the later ones need not be waited for
        return attempts
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _resolver(options: DiscoveryOptions, deadline: float) -> Resolver:
    lifetime = max(0.05, min(DNS_STEP, deadline - time.monotonic()))
    return Resolver(server=options.dns_server, lifetime=lifetime)


def _autoconfig(
    address: str, domain: str, network: HostPolicy, options: DiscoveryOptions, deadline: float
) -> Attempt:
    """The first autoconfig document that parses, fetched from a checked address."""
    attempt = Attempt()
    port = options.autoconfig_http_port or 443
    scheme = "http" if options.autoconfig_http_port else "https"
    for host, path in autoconfig.urls(domain):
        url = f"{scheme}://{host}{'' if port in (80, 443) else f':{port}'}{path}"
        addresses = _resolver(options, deadline).addresses(host)
        if not addresses.records:
            attempt.notes.append(f"{url}: {addresses.problem}")
            continue
        refused = None if network.allow_private else _non_public(addresses.records)
        if refused is not None:
            attempt.notes.append(f"{url}: not fetched, {host} resolves to {refused}")
            continue
        fetched = autoconfig.fetch(
            host,
            path,
            address=addresses.records[0],
            deadline=deadline,
            port=port,
            tls=options.autoconfig_http_port is None,
        )
        if fetched.body is None:
            attempt.notes.append(f"{url}: {fetched.problem}")
            continue
        try:
            config = autoconfig.parse(fetched.body, email=address)
        except autoconfig.NotAnAutoconfig as exc:
            attempt.notes.append(f"{url}: {exc}")
            continue
        attempt.found = _from_autoconfig(config, url)
        return attempt
    return attempt


def _non_public(addresses: tuple[Any, ...]) -> str | None:
    for address in addresses:
        kind = non_public_kind(address)
        if kind is not None:
            return f"{address}, a {kind} address"
    return None


def _from_autoconfig(config: autoconfig.Autoconfig, url: str) -> Found:
    servers = {
        kind: None if e is None else _server(e.host, e.port, e.security)
        for kind, e in (("imap", config.imap), ("pop3", config.pop3), ("smtp", config.smtp))
    }
    incoming = config.imap or config.pop3 or config.smtp
    username = incoming.username if incoming is not None else None
    return Found("autoconfig", url, servers, _known_provider(servers), username)


def _srv(domain: str, options: DiscoveryOptions, deadline: float) -> Attempt:
    """RFC 6186 SRV records; implicit TLS names first (RFC 8314)."""
    attempt = Attempt()
    servers: dict[str, dict[str, Any] | None] = {}
    used = []
    for kind, names in SRV_NAMES.items():
        servers[kind] = None
        for prefix, security in names:
            lookup = _resolver(options, deadline).srv(f"{prefix}.{domain}")
            if lookup.records:
                best = lookup.records[0]
                servers[kind] = _server(best.target, best.port, security)
                used.append(f"{prefix}.{domain}")
                break
            attempt.notes.append(str(lookup.problem))
    if servers["imap"] or servers["pop3"]:
        detail = "SRV " + ", ".join(used)
        attempt.found = Found("srv", detail, servers, _known_provider(servers))
    return attempt


def _mx(domain: str, options: DiscoveryOptions, deadline: float) -> Attempt:
    """The preset of the provider that receives the domain's mail (Google, Microsoft, …)."""
    lookup = _resolver(options, deadline).mx(domain)
    attempt = Attempt()
    for host in lookup.records:
        preset = preset_for_mx(host)
        if preset is not None:
            servers = _preset_servers(preset)
            attempt.found = Found("mx", f"MX host {host}", servers, preset)
            return attempt
    if lookup.records:
        attempt.notes.append(f"MX {', '.join(lookup.records[:3])}: no known provider")
    else:
        attempt.notes.append(str(lookup.problem))
    return attempt


def _server(host: str, port: int, security: Security) -> dict[str, Any]:
    return {"host": host, "port": port, "security": security.value}


def _preset_servers(preset: ProviderPreset) -> dict[str, dict[str, Any] | None]:
    data = preset.to_json()
    return {kind: data[kind] for kind in ("imap", "pop3", "smtp")}


def _known_provider(servers: dict[str, dict[str, Any] | None]) -> ProviderPreset | None:
    """The preset whose servers these are (an autoconfig naming imap.gmail.com), or None."""
    for server in servers.values():
        if server is not None:
            preset = detect_preset(str(server["host"]))
            if preset is not CUSTOM:
                return preset
    return None


def _answer(
    address: str, domain: str, found: Found | None, attempts: dict[str, Attempt]
) -> dict[str, Any]:
    """The one JSON shape of CLI `--json`, the API and the connect form."""
    tried = [
        {"source": source, "found": attempt.found is not None, "notes": attempt.notes[:10]}
        for source, attempt in attempts.items()
    ]
    preset = found.preset if found is not None else None
    return {
        "email": address,
        "domain": domain,
        "found": found is not None,
        "source": found.source if found else None,
        "detail": found.detail if found else None,
        "provider": preset.name if preset else None,
        "label": preset.label if preset else None,
        "oauth": preset.oauth if preset else None,
        "username": (found.username if found else None) or address,
        "imap": found.servers.get("imap") if found else None,
        "pop3": found.servers.get("pop3") if found else None,
        "smtp": found.servers.get("smtp") if found else None,
        "tried": tried,
        "hint": None if found else NOT_FOUND_HINT,
    }
