"""Each company's private drop address, `log+<token>@<host>`: make, rotate, look up.

The token is the only secret of the address (80 random bits, lower-case hex so it
survives the lower-casing of addresses); mail to a token no company holds is refused at
RCPT time. `<host>` is `$MAILROOM_DROPBOX_DOMAIN`, else this machine's name: point an MX
or a forwarding rule at `mailroom serve --smtp-port`. The receiver matches the token
whatever the domain part says, so the address Mailroom prints always reaches it, even
when this machine's name is a bare `localhost`; `domain_problem` says when the domain
will not work for other mail servers, and `DOMAIN_HINT` how to set it.
"""

from __future__ import annotations

import os
import re
import secrets
import socket

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Company
from mailroom.db.outbox_models import DropToken
from mailroom.errors import BadInput

LOCAL_PART = "log"
POLICIES = ("refuse", "quarantine")
_LOCAL = re.compile(rf"{LOCAL_PART}\+([0-9a-f]{{20}})")


DOMAIN_HINT = (
    "Set MAILROOM_DROPBOX_DOMAIN to a domain whose MX (or address) record points at this "
    "server, e.g. MAILROOM_DROPBOX_DOMAIN=drop.example.com, and restart `mailroom serve`; "
    "mail for it must reach the receiver on `--smtp-port` (2525 by default)."
)


def drop_domain() -> str:
    """The domain of drop addresses: MAILROOM_DROPBOX_DOMAIN, else this host's FQDN."""
    configured = os.environ.get("MAILROOM_DROPBOX_DOMAIN", "").strip().lower()
    return configured or socket.getfqdn().lower()


def domain_problem(domain: str | None = None, *, resolve: bool = True) -> str | None:
    """Why other mail servers cannot deliver to the drop domain, or None if they may.

    A name without a dot (`localhost`, a bare host name) is never deliverable; with
    `resolve`, a name that does not resolve from here is reported too (one DNS look-up).
    """
    name = (domain or drop_domain()).strip(".")
    source = (
        "MAILROOM_DROPBOX_DOMAIN"
        if os.environ.get("MAILROOM_DROPBOX_DOMAIN")
        else ("this machine's name")
    )
    if "." not in name:
        return f"the drop domain {name!r} ({source}) has no dot: no other server can send to it"
    if resolve:
        try:
            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return f"the drop domain {name!r} ({source}) does not resolve from this machine"
    return None


def drop_address(token: str, domain: str | None = None) -> str:
    """The drop address for `token` (`log+TOKEN@domain`)."""
    return f"{LOCAL_PART}+{token}@{domain or drop_domain()}"


def token_of(address: str) -> str | None:
    """The token in a drop address (`log+TOKEN@whatever`), or None.

    Only the local part counts: the domain is whatever the sender was told (this machine's
    name may be `localhost`, which no address validation accepts).
    """
    local, at, _domain = address.strip().strip("<>").strip().rpartition("@")
    if not at:
        return None
    match = _LOCAL.fullmatch(local.lower())
    return match.group(1) if match else None


def ensure_token(
    session: Session,
    *,
    company: Company,
    rotate: bool = False,
    unknown_senders: str | None = None,
) -> DropToken:
    """The company's drop token, made on first use; a new one when `rotate` is set."""
    if unknown_senders is not None and unknown_senders not in POLICIES:
        raise BadInput(
            f"Unknown policy {unknown_senders!r} for unknown senders.",
            hint=f"Use one of: {', '.join(POLICIES)}.",
        )
    row = session.scalar(select(DropToken).where(DropToken.company_id == company.id))
    if row is None:
        row = DropToken(company_id=company.id, token=secrets.token_hex(10))
        session.add(row)
    elif rotate:
        row.token = secrets.token_hex(10)
    if unknown_senders is not None:
        row.unknown_senders = unknown_senders
    session.flush()
    return row


def find_token(session: Session, address: str) -> DropToken | None:
    """The drop token an RCPT address names, or None when it names none."""
    token = token_of(address)
    if token is None:
        return None
    return session.scalar(select(DropToken).where(DropToken.token == token))
