"""OAuth 2.0 clients (one per provider) and mailbox grants: storage, encrypted at rest.

Providers: Google (`https://mail.google.com/`, offline access and consent asked for so a
refresh token is always issued) and Microsoft Entra ID (the `common` endpoints; a single
tenant or a national cloud sets its own URLs). Endpoint overrides must be https, except on
a loopback address (127.0.0.1, ::1), which the test suite's local provider uses.

Secrets: the client secret is encrypted as `oauth-client:<provider>:secret`, a mailbox's
refresh and access tokens as `mailbox:<id>:oauth-refresh` and `mailbox:<id>:oauth-access`
(security.secrets), so none decrypts in another row or as another secret. Clear text is
only returned by the `*_secret`/`load_grant` readers, for the token exchange and logins.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Mailbox
from mailroom.db.oauth_models import MailboxOAuth, OAuthClient
from mailroom.errors import BadInput, NotFound
from mailroom.security.secrets import SecretBox, mailbox_context


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider's default endpoints and the scopes a mailbox needs (issue 12 §1)."""

    name: str
    title: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    extra_params: tuple[tuple[str, str], ...] = ()


PROVIDERS: dict[str, Provider] = {
    "google": Provider(
        name="google",
        title="Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=("https://mail.google.com/",),
        extra_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
    "microsoft": Provider(
        name="microsoft",
        title="Microsoft",
        authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        scopes=(
            "offline_access",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """A registered client with its effective endpoints and its secret (memory only)."""

    provider: Provider
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str


def get_provider(name: str) -> Provider:
    """The provider called `name` (google, microsoft); BadInput otherwise."""
    provider = PROVIDERS.get(name.strip().lower())
    if provider is None:
        raise BadInput(f"Unknown OAuth provider {name!r}.", hint="Use google or microsoft.")
    return provider


def check_endpoint_url(url: str, what: str) -> str:
    """`url` if it is an absolute https URL, or http on a loopback address; else BadInput."""
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise BadInput(f"The {what} {url!r} is not an absolute http(s) URL.")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise BadInput(f"The {what} must carry no user name, password or #fragment.")
    if parts.scheme == "http" and not _is_loopback(host):
        raise BadInput(
            f"The {what} {url!r} is not https.",
            hint="Use https; plain http is allowed only on 127.0.0.1 or ::1.",
        )
    return parts.geturl()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_context(provider: str) -> str:
    """The associated data binding a client secret to its provider's row."""
    return f"oauth-client:{provider}:secret"


def set_client(
    session: Session,
    secrets: SecretBox,
    *,
    provider: str,
    client_id: str,
    client_secret: str,
    authorize_url: str | None = None,
    token_url: str | None = None,
) -> OAuthClient:
    """Register (or replace) the client for `provider`; the secret is encrypted at once."""
    chosen = get_provider(provider)
    client_id = client_id.strip()
    if not client_id or any(c.isspace() for c in client_id):
        raise BadInput("The client id is empty or has spaces.")
    if not client_secret:
        raise BadInput("The client secret is empty.", hint="Pipe it in with --client-secret-stdin.")
    authorize = check_endpoint_url(authorize_url, "authorize URL") if authorize_url else None
    token = check_endpoint_url(token_url, "token URL") if token_url else None
    row = session.scalar(select(OAuthClient).where(OAuthClient.provider == chosen.name))
    sealed = secrets.encrypt(client_secret, context=client_context(chosen.name))
    if row is None:
        row = OAuthClient(provider=chosen.name, client_id=client_id, secret=sealed)
        session.add(row)
    row.client_id, row.secret = client_id, sealed
    row.authorize_url, row.token_url = authorize, token
    session.flush()
    return row


def list_clients(session: Session) -> list[OAuthClient]:
    """Every registered client, by provider name."""
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.provider)))


def client_config(session: Session, secrets: SecretBox, provider: str) -> ClientConfig:
    """The registered client of `provider`, secret decrypted; NotFound if none."""
    chosen = get_provider(provider)
    row = session.scalar(select(OAuthClient).where(OAuthClient.provider == chosen.name))
    if row is None:
        raise NotFound(
            f"No OAuth client is registered for {chosen.title}.",
            hint=f"Run: mailroom oauth set {chosen.name} --client-id ID --client-secret-stdin",
        )
    return ClientConfig(
        provider=chosen,
        client_id=row.client_id,
        client_secret=secrets.decrypt(row.secret, context=client_context(chosen.name)),
        authorize_url=row.authorize_url or chosen.authorize_url,
        token_url=row.token_url or chosen.token_url,
    )


# -- a mailbox's grant ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """A mailbox's tokens in clear (memory only)."""

    provider: str
    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    access_expires_at: datetime | None = None
    scope: str = ""


REFRESH_PURPOSE = "oauth-refresh"
ACCESS_PURPOSE = "oauth-access"


def save_grant(session: Session, secrets: SecretBox, *, mailbox: Mailbox, grant: Grant) -> None:
    """Store (or replace) the mailbox's tokens, each encrypted with its own context.

    A rotated refresh token must be saved the moment it arrives, alone in its transaction:
    the old one is already dead at the provider."""
    get_provider(grant.provider)
    row = session.scalar(select(MailboxOAuth).where(MailboxOAuth.mailbox_id == mailbox.id))
    refresh = secrets.encrypt(
        grant.refresh_token, context=mailbox_context(mailbox.id, REFRESH_PURPOSE)
    )
    if row is None:
        row = MailboxOAuth(mailbox_id=mailbox.id, provider=grant.provider, refresh_secret=refresh)
        session.add(row)
    row.provider, row.refresh_secret, row.scope = grant.provider, refresh, grant.scope
    row.access_secret = (
        secrets.encrypt(grant.access_token, context=mailbox_context(mailbox.id, ACCESS_PURPOSE))
        if grant.access_token
        else None
    )
    row.access_expires_at = grant.access_expires_at
    session.flush()


def has_grant(session: Session, mailbox_id: int) -> bool:
    """Whether the mailbox signs in with OAuth (has a stored grant)."""
    found = session.scalar(select(MailboxOAuth.id).where(MailboxOAuth.mailbox_id == mailbox_id))
    return found is not None


def load_grant(session: Session, secrets: SecretBox, *, mailbox: Mailbox) -> Grant | None:
    """The mailbox's tokens decrypted, or None for a password mailbox."""
    row = session.scalar(select(MailboxOAuth).where(MailboxOAuth.mailbox_id == mailbox.id))
    if row is None:
        return None
    access = (
        secrets.decrypt(row.access_secret, context=mailbox_context(mailbox.id, ACCESS_PURPOSE))
        if row.access_secret is not None
        else None
    )
    return Grant(
        provider=row.provider,
        refresh_token=secrets.decrypt(
            row.refresh_secret, context=mailbox_context(mailbox.id, REFRESH_PURPOSE)
        ),
        access_token=access,
        access_expires_at=row.access_expires_at,
        scope=row.scope,
    )
