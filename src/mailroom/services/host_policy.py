"""Which mail servers a dashboard or API user may make Mailroom connect to, and how often.

A mailbox's host and port are typed by a member, and Mailroom connects to them from inside
the operator's network. Without limits, "Test connection" and `POST /api/v1/mailboxes`
were a port scanner that echoed whatever answered (issue 11). So, for the web and the API
(`HostPolicy` built by web.deps.host_policy):

- every address a host name resolves to (`socket.getaddrinfo`, IPv4 and IPv6, IPv4-mapped
  and 6to4 IPv6 unwrapped) must be public: loopback, private, link-local, multicast,
  unspecified, reserved and other non-global addresses are refused (`HostNotAllowed`, 422)
  before any connection, unless the operator sets `MAILROOM_ALLOW_PRIVATE_HOSTS=1`
  (config.Settings.allow_private_hosts). The CLI is the operator's: `OPERATOR` allows any;
- at most `TESTS_PER_MINUTE` connection tests and connects per user in any 60 seconds
  (`RateLimited`, 429). Counted in the memory of the serve process (`ConnectLimiter`, one
  per web application): the limit only has to slow a scan down, a restart forgetting it
  costs nothing, and it needs no table nor a write per test. With several serve
  processes each counts on its own;
- a connection or greeting that fails is answered without the server's words (an SSH
  banner, an HTTP error page): `screening` replaces them with a fixed sentence; the
  connector's log line keeps the detail for the operator.

DNS rebinding: the connectors resolve the name again when they connect, so a name whose
answer changes between the check and the connection (a rebinding DNS server with a short
TTL) can still reach a private address. The check is not pinned to the connection
(that would need the checked address passed to imaplib/poplib/smtplib with the name kept
for TLS SNI); this residual risk is accepted: the answer shows no server text, and the
rate limit bounds how fast anyone can try.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailroom.config import ALLOW_PRIVATE_HOSTS_ENV
from mailroom.errors import (
    BadInput,
    HostNotAllowed,
    MailServerError,
    NetworkError,
    ProtocolError,
    RateLimited,
)

TESTS_PER_MINUTE = 20
WINDOW = 60.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ConnectLimiter:
    """At most `per_minute` connection attempts per user in any `WINDOW` seconds."""

    def __init__(
        self, per_minute: int = TESTS_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[int, deque[float]] = {}

    def spend(self, user_id: int) -> None:
        """Count one attempt for the user; `RateLimited` when the minute's are used up."""
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(user_id, deque())
            while times and times[0] <= now - WINDOW:
                times.popleft()
            if len(times) >= self.per_minute:
                wait = max(1, math.ceil(times[0] + WINDOW - now))
                raise RateLimited(
                    f"Too many connection tests: at most {self.per_minute} a minute.",
                    hint=f"Wait {wait} seconds and try again.",
                    retry_after=wait,
                )
            times.append(now)


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Where a caller may make Mailroom connect, how often, and what it may be told."""

    allow_private: bool
    quiet_greetings: bool = False  # web and API: no server text from a failed greeting
    user_id: int | None = None
    limiter: ConnectLimiter | None = None

    def admit(self, *servers: tuple[str, int]) -> None:
        """Count one test for the user, then check every server, before connecting to any."""
        if self.limiter is not None and self.user_id is not None:
            self.limiter.spend(self.user_id)
        if not self.allow_private:
            for host, port in servers:
                check_public(host, port)

    @contextlib.contextmanager
    def screening(self) -> Iterator[None]:
        """Around a login: a failed connection or greeting without the server's words."""
        try:
            yield
        except MailServerError as exc:
            if not self.quiet_greetings or exc.step != "connect":
                raise
            if not isinstance(exc, ProtocolError | NetworkError):
                raise  # TLS failures: OpenSSL's words, with the self-signed hint
            raise quiet_error(exc) from None


OPERATOR = HostPolicy(allow_private=True)


def quiet_error(exc: MailServerError) -> MailServerError:
    """A ProtocolError or NetworkError (as `exc`) saying only which server failed to greet."""
    server = exc.server or "mail server"
    kind = ProtocolError if isinstance(exc, ProtocolError) else NetworkError
    quiet = kind(
        f"The {server} could not be reached, or did not answer as that kind of mail "
        "server (what it sent is not shown).",
        hint="Check the host name, the port and the security (SSL/TLS or STARTTLS).",
    )
    quiet.step, quiet.server = exc.step, exc.server
    return quiet


def check_public(host: str, port: int) -> None:
    """`HostNotAllowed` unless every address `host` resolves to is public."""
    for address in resolve(host, port):
        kind = non_public_kind(address)
        if kind is not None:
            raise HostNotAllowed(
                f"Mailroom does not connect to {host} from the dashboard or the API: it "
                f"resolves to {address}, a {kind} address. Loopback, private, link-local, "
                "multicast, unspecified and reserved addresses are refused.",
                hint=f"Use the mail server's public name. The operator may allow private "
                f"hosts with {ALLOW_PRIVATE_HOSTS_ENV}=1 for `mailroom serve`, or connect "
                "the mailbox with the CLI (`mailroom mailbox add`).",
            )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to for a TCP connection (as the connectors will)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadInput(
            f"The mail server name {host} could not be resolved.",
            hint="Check the host name.",
        ) from exc
    addresses = []
    for _family, _type, _proto, _name, sockaddr in found:
        text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 scope ("fe80::1%eth0")
        addresses.append(ipaddress.ip_address(text))
    return addresses


def non_public_kind(address: IPAddress) -> str | None:
    """Why `address` is not a public one ("loopback", "private", …), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    kinds = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, hit in kinds if hit), None)
