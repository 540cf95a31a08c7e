"""SASL bearer-token logins shared by IMAP, POP3 and SMTP: XOAUTH2 and OAUTHBEARER.

XOAUTH2 is Google's and Microsoft's mechanism (developers.google.com/gmail/imap/xoauth2-
protocol; learn.microsoft.com "Authenticate an IMAP, POP or SMTP connection using OAuth"):
the client's one response is `user=U^Aauth=Bearer T^A^A` (^A = 0x01). OAUTHBEARER is its
standard successor (RFC 7628 §3.1): `n,a=U,^Aauth=Bearer T^A^A`, the GS2 header naming
the user (RFC 5801 §4, with `,` and `=` escaped).

Both end the same way when the token is refused: the server sends one more challenge, a
base64 JSON error (`{"status":"401",…}`, RFC 7628 §3.2.2), and waits for the client to
answer it — with an empty line for XOAUTH2, with a single 0x01 for OAUTHBEARER (§3.2.3) —
before it sends the final failure. `BearerExchange` answers so; IMAPClient's own
`oauth2_login` would send the token a second time instead.

Nothing here logs; `login_secrets` lists every form of the token a message could carry,
for the connection's scrubbing (connectors.transport).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from mailroom.connectors.base import ServerSettings

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"
MECHANISMS = (XOAUTH2, OAUTHBEARER)


def choose_mechanism(advertised: Iterable[str], wanted: str | None = None) -> str:
    """The mechanism to use: `wanted` if given, else XOAUTH2 when advertised (what Google and
    Microsoft document), else OAUTHBEARER when advertised, else XOAUTH2 (POP3 servers
    without CAPA SASL still take it)."""
    if wanted is not None:
        upper = wanted.upper()
        if upper not in MECHANISMS:
            raise ValueError(f"unknown OAuth SASL mechanism {wanted!r}")
        return upper
    offered = {name.upper() for name in advertised}
    if XOAUTH2 not in offered and OAUTHBEARER in offered:
        return OAUTHBEARER
    return XOAUTH2


def client_response(mechanism: str, username: str, token: str) -> bytes:
    """The client's first (and only) SASL response for `mechanism`, not yet base64."""
    if mechanism == OAUTHBEARER:
        authzid = username.replace("=", "=3D").replace(",", "=2C")
        return f"n,a={authzid},\x01auth=Bearer {token}\x01\x01".encode()
    return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()


def abort_response(mechanism: str) -> bytes:
    """What the client answers the server's error challenge with (RFC 7628 §3.2.3)."""
    return b"\x01" if mechanism == OAUTHBEARER else b""


def error_status(challenge: bytes) -> str | None:
    """The `status` of a server's JSON error challenge (already base64-decoded), if any."""
    try:
        status = json.loads(challenge.decode("utf-8")).get("status")
    except (ValueError, AttributeError):
        return None
    return str(status) if status is not None else None


class BearerExchange:
    """A SASL client callable: the token response first, then the error acknowledgement.

    Called with each server challenge (decoded bytes); remembers the error status the
    server sent, for the refusal's message (it never holds the token in that message).
    """

    def __init__(self, mechanism: str, username: str, token: str) -> None:
        self.mechanism = mechanism
        self._first = client_response(mechanism, username, token)
        self.steps = 0
        self.status: str | None = None

    def __call__(self, challenge: bytes | None = None) -> bytes:
        """The response to `challenge` (None or empty: the first, token-bearing one)."""
        self.steps += 1
        if self.steps == 1 and not challenge:
            return self._first
        self.status = error_status(challenge or b"") or self.status
        return abort_response(self.mechanism)


def login_secrets(settings: ServerSettings) -> tuple[str, ...]:
    """Every string that would give a secret away: the password, the token, and the base64
    of each SASL response carrying the token."""
    found = [s for s in (settings.password, settings.access_token) if s]
    if settings.access_token:
        for mechanism in MECHANISMS:
            raw = client_response(mechanism, settings.username, settings.access_token)
            found.append(base64.b64encode(raw).decode("ascii"))
    return tuple(found)
