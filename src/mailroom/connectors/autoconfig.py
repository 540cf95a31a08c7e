"""Thunderbird autoconfig documents (config-v1.1.xml): fetch one, bounded; parse it, safely.

A domain can publish where its mail servers are at
`https://autoconfig.DOMAIN/mail/config-v1.1.xml` or
`https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml` (Thunderbird's "Autoconfiguration"
format: `clientConfig/emailProvider` with `incomingServer type="imap|pop3"` and
`outgoingServer type="smtp"`, each with `hostname`, `port`, `socketType` SSL|STARTTLS|plain
and `username` with %EMAILADDRESS% / %EMAILLOCALPART% / %EMAILDOMAIN% placeholders).

The document is untrusted input fetched from a name the user typed:
- `fetch` connects to an address the caller has already resolved and checked (the SSRF
  check in services/discovery.py), so a second DNS answer cannot point it elsewhere; TLS
  is still verified against the host name (SNI). No redirect is followed, only 200 is
  accepted, at most `MAX_BYTES` are read, and every socket operation has a timeout;
- `parse` refuses any DOCTYPE (so no entity is ever defined, let alone expanded: no
  "billion laughs", no external entity) before the standard library's expat parser sees
  the bytes, and raises only `NotAnAutoconfig` whatever the bytes are. Host names are
  checked as host names, ports as 1..65535.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from mailroom.connectors.base import Security
from mailroom.connectors.dns_lookup import IPAddress, host_name

MAX_BYTES = 64 * 1024
PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
SOCKET_TYPES = {"ssl": Security.SSL, "starttls": Security.STARTTLS, "plain": Security.NONE}
KINDS = {"incomingServer": ("imap", "pop3"), "outgoingServer": ("smtp",)}
MAX_SERVERS = 20


class NotAnAutoconfig(ValueError):
    """The bytes are not a usable autoconfig document (the message says why)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server from the document."""

    host: str
    port: int
    security: Security
    username: str | None = None
    oauth: bool = False  # it lists OAuth2 among its authentication methods


@dataclass(frozen=True, slots=True)
class Autoconfig:
    """The servers a document names, the best of each kind (None: not offered)."""

    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None
    provider: str | None = None  # displayName


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch got: the body, or why not."""

    body: bytes | None
    problem: str | None = None


def urls(domain: str) -> list[tuple[str, str]]:
    """The (host, path) pairs to try for `domain`, in Thunderbird's order."""
    return [(f"autoconfig.{domain}", PATHS[0]), (domain, PATHS[1])]


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to one already-checked address, with the host name in Host and in TLS SNI."""

    def __init__(
        self,
        host: str,
        address: IPAddress,
        port: int,
        timeout: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


def fetch(
    host: str,
    path: str,
    *,
    address: IPAddress,
    deadline: float,
    port: int = 443,
    tls: bool = True,
) -> Fetched:
    """GET `path` from `host` at `address` before `deadline` (time.monotonic()), bounded."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Fetched(None, "no time left")
    context = ssl.create_default_context() if tls else None
    conn = _PinnedConnection(host, address, port, remaining, context)
    try:
        conn.request("GET", path, headers={"Accept": "text/xml, application/xml"})
        response = conn.getresponse()
        if response.status != 200:
            return Fetched(None, f"HTTP {response.status}")
        return _read_bounded(response, deadline)
    except OSError as exc:  # refused, timed out, TLS (ssl.SSLError): this side's words
        return Fetched(None, f"{type(exc).__name__}: {str(exc)[:200]}")
    except (http.client.HTTPException, ValueError) as exc:  # never echo what a server sent
        return Fetched(None, f"not an HTTP answer ({type(exc).__name__})")
    finally:
        conn.close()


def _read_bounded(response: http.client.HTTPResponse, deadline: float) -> Fetched:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            return Fetched(None, "no time left")
        chunk = response.read(8192)
        if not chunk:
            return Fetched(b"".join(chunks))
        size += len(chunk)
        if size > MAX_BYTES:
            return Fetched(None, f"larger than {MAX_BYTES} bytes")
        chunks.append(chunk)


def parse(document: bytes, *, email: str) -> Autoconfig:
    """The servers `document` names for `email`; `NotAnAutoconfig` for anything else."""
    if len(document) > MAX_BYTES:
        raise NotAnAutoconfig(f"larger than {MAX_BYTES} bytes")
    if b"<!doctype" in document.lower() or b"<!entity" in document.lower():
        raise NotAnAutoconfig("a DOCTYPE or entity declaration (refused)")
    try:
        root = ET.fromstring(document)
    except (ET.ParseError, ValueError, UnicodeError, RecursionError) as exc:
        raise NotAnAutoconfig(f"not well-formed XML ({type(exc).__name__})") from None
    if root.tag != "clientConfig":
        raise NotAnAutoconfig(f"the root element is {str(root.tag)[:40]!r}, not clientConfig")
    provider = root.find("emailProvider")
    if provider is None:
        raise NotAnAutoconfig("no emailProvider element")
    found: dict[str, list[Endpoint]] = {"imap": [], "pop3": [], "smtp": []}
    for element_name, kinds in KINDS.items():
        for element in provider.findall(element_name)[:MAX_SERVERS]:
            kind = (element.get("type") or "").strip().lower()
            endpoint = _endpoint(element, email=email) if kind in kinds else None
            if endpoint is not None:
                found[kind].append(endpoint)
    if not any(found.values()):
        raise NotAnAutoconfig("no usable IMAP, POP3 or SMTP server in it")
    name = _text(provider, "displayName")
    return Autoconfig(
        imap=_best(found["imap"]),
        pop3=_best(found["pop3"]),
        smtp=_best(found["smtp"]),
        provider=name[:100] if name else None,
    )


def _best(endpoints: list[Endpoint]) -> Endpoint | None:
    """The first encrypted server in the document's order, else the first plain one."""
    encrypted = [e for e in endpoints if e.security is not Security.NONE]
    ranked = encrypted or endpoints
    return ranked[0] if ranked else None


def _text(element: ET.Element, child: str) -> str | None:
    found = element.find(child)
    text = found.text if found is not None else None
    return text.strip() if text and text.strip() else None


def _endpoint(element: ET.Element, *, email: str) -> Endpoint | None:
    local, _, domain = email.rpartition("@")
    raw_host = (_text(element, "hostname") or "").replace("%EMAILDOMAIN%", domain)
    host = host_name(raw_host)
    port_text = _text(element, "port") or ""
    security = SOCKET_TYPES.get((_text(element, "socketType") or "").lower())
    if host is None or security is None or not port_text.isascii() or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    methods = {(m.text or "").strip().lower() for m in element.findall("authentication")}
    return Endpoint(
        host=host,
        port=port,
        security=security,
        username=_username(_text(element, "username"), email=email, local=local, domain=domain),
        oauth="oauth2" in methods,
    )


def _username(template: str | None, *, email: str, local: str, domain: str) -> str | None:
    if template is None:
        return None
    name = (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )
    if "%" in name or len(name) > 320 or not name.isprintable() or " " in name:
        return None  # a placeholder Mailroom cannot fill (%REALNAME%, …), or not a login name
    return name
