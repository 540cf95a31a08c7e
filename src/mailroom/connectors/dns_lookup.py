"""DNS lookups for provider discovery: SRV (RFC 6186, RFC 8314), MX and A/AAAA, bounded.

dnspython does the protocol. Every lookup has a lifetime (seconds, the whole lookup with
its retries), so a name server that never answers costs at most that long. A `Resolver`
is built for one discovery: the system's name servers (/etc/resolv.conf), or one given
server (`host:port`, $MAILROOM_DNS_SERVER; the tests' local server). Answers are
untrusted: at most `MAX_RECORDS` records are read per lookup, names are checked as host
names and ports as 1..65535. A failed lookup (no such name, no answer, timeout, refused)
is an empty answer with the reason; it never raises, since discovery goes on with the
next source.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

import dns.exception
import dns.inet
import dns.resolver

MAX_RECORDS = 20
HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer: where the service is, in the order RFC 2782 says to try them."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    """What one lookup found (possibly nothing), and why nothing when it found nothing."""

    records: tuple[T, ...]
    problem: str | None = None


def parse_server(value: str) -> tuple[str, int]:
    """`host[:port]` (an IPv6 address in brackets) → (address, port); ValueError if bad."""
    text = value.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host = text
    if not dns.inet.is_address(host) or not 1 <= port <= 65535:
        raise ValueError(f"not an address[:port]: {value!r}")
    return host, port


class Resolver:
    """Bounded lookups through the system's name servers or one given server."""

    def __init__(self, *, server: tuple[str, int] | None = None, lifetime: float = 3.0) -> None:
        if server is None:
            try:
                self._resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                self._resolver = dns.resolver.Resolver(configure=False)
                self._resolver.nameservers = ["127.0.0.1"]
        else:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [server[0]]
            self._resolver.port = server[1]
        self._resolver.lifetime = lifetime
        self._resolver.timeout = lifetime

    def _query(self, name: str, kind: str) -> tuple[list[object], str | None]:
        try:
            answer = self._resolver.resolve(name, kind, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return [], f"{name}: no such name"
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            return [], f"{name} {kind}: no answer in time"
        except (dns.resolver.NoNameservers, dns.resolver.YXDOMAIN) as exc:
            return [], f"{name} {kind}: the name server failed ({type(exc).__name__})"
        except (dns.exception.DNSException, ValueError) as exc:
            return [], f"{name} {kind}: {type(exc).__name__}"
        records = list(answer.rrset or ())[:MAX_RECORDS]
        return records, None if records else f"{name}: no {kind} record"

    def srv(self, name: str) -> Lookup[SrvRecord]:
        """The SRV records of `name` that name a service, best first (RFC 2782 order).

        A single record whose target is "." says the service is not offered (RFC 2782):
        that is an empty answer.
        """
        found, problem = self._query(name, "SRV")
        records = []
        for rdata in found:
            target = host_name(str(rdata.target))  # type: ignore[attr-defined]
            port = int(rdata.port)  # type: ignore[attr-defined]
            if target is None or not 1 <= port <= 65535:
                continue
            priority, weight = int(rdata.priority), int(rdata.weight)  # type: ignore[attr-defined]
            records.append(SrvRecord(priority, weight, port, target))
        if found and not records:
            problem = problem or f"{name}: the service is not offered"
        records.sort(key=lambda r: (r.priority, -r.weight))
        return Lookup(tuple(records), problem)

    def mx(self, domain: str) -> Lookup[str]:
        """The MX hosts of `domain`, most preferred first."""
        found, problem = self._query(domain, "MX")
        ranked = []
        for rdata in found:
            host = host_name(str(rdata.exchange))  # type: ignore[attr-defined]
            if host is not None:
                ranked.append((int(rdata.preference), host))  # type: ignore[attr-defined]
        ranked.sort()
        return Lookup(tuple(host for _pref, host in ranked), problem)

    def addresses(self, host: str) -> Lookup[IPAddress]:
        """Every IPv4 and IPv6 address of `host` (A and AAAA)."""
        found: list[IPAddress] = []
        problems = []
        for kind in ("A", "AAAA"):
            records, problem = self._query(host, kind)
            found.extend(ipaddress.ip_address(str(r)) for r in records)
            if problem:
                problems.append(problem)
        return Lookup(tuple(found), None if found else "; ".join(dict.fromkeys(problems)))


def host_name(text: str) -> str | None:
    """`text` as a lower-case host name without the final dot, or None if it is not one."""
    name = text.strip().lower().rstrip(".")
    return name if HOST_NAME.match(name) else None
