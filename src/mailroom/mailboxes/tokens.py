"""The one refresh policy for OAuth mailboxes: every connection's access token goes through here.

Callers (sync, IDLE, retro, outbox, mailbox tests) build their ServerSettings as before and
connect through `connect_with_token`, which for an OAuth mailbox:

- before connecting, refreshes the access token when it expires within `REFRESH_MARGIN`
  seconds (or is missing) and hands the connector settings carrying the current token;
- on `TokenRejected` (the server refused a token we thought valid) refreshes once and
  retries the login once; a second refusal is raised;
- stores a rotated refresh token at once, in its own short transaction (the old one is
  already dead at a strict provider); no transaction is open during the HTTP refresh or
  the login;
- raises `OAuthRevoked` when the provider answers `invalid_grant` (sign in again), after
  one look whether another process rotated the refresh token meanwhile.

A password mailbox (no `mailbox_oauth` row) passes straight through. Refreshes of one
mailbox in this process are serialised (a lock per mailbox), so two connections never
spend the same rotating refresh token.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from mailroom.app import App
from mailroom.connectors import oauth2
from mailroom.connectors.base import ServerSettings
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.db.times import as_utc
from mailroom.errors import NotFound, OAuthRevoked, TokenRejected
from mailroom.mailboxes.oauth import Grant, client_config, has_grant, load_grant, save_grant

REFRESH_MARGIN = 60.0
T = TypeVar("T")

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(mailbox_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(mailbox_id, threading.Lock())


def endpoints_of(app: App, provider: str) -> oauth2.OAuthEndpoints:
    """The registered client of `provider` as the connectors' endpoints (secret in memory)."""
    with app.sessions() as session:
        config = client_config(session, app.secrets, provider)
    return oauth2.OAuthEndpoints(
        client_id=config.client_id,
        client_secret=config.client_secret,
        authorize_url=config.authorize_url,
        token_url=config.token_url,
    )


def grant_of(app: App, mailbox_id: int) -> Grant | None:
    """The mailbox's grant (a short read, transaction ended), None for a password mailbox."""
    with app.sessions() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise NotFound(f"No mailbox {mailbox_id}.")
        return load_grant(session, app.secrets, mailbox=mailbox)


def store_tokens(app: App, mailbox_id: int, provider: str, tokens: oauth2.TokenSet) -> None:
    """Save the tokens at once, alone in a short transaction of their own."""
    grant = Grant(
        provider=provider,
        refresh_token=tokens.refresh_token,
        access_token=tokens.access_token,
        access_expires_at=datetime.fromtimestamp(tokens.expires_at, UTC),
        scope=tokens.scope,
    )
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise NotFound(f"No mailbox {mailbox_id}.")
        save_grant(session, app.secrets, mailbox=mailbox, grant=grant)


def _fresh_enough(grant: Grant, now: datetime) -> bool:
    expires = as_utc(grant.access_expires_at)
    if not grant.access_token or expires is None:
        return False
    return expires - now > timedelta(seconds=REFRESH_MARGIN)


def current_token(app: App, mailbox_id: int, *, force: bool = False) -> str | None:
    """The mailbox's access token, refreshed first if it expires soon (or `force`).

    None for a password mailbox. `OAuthRevoked` when the grant is dead."""
    with _lock(mailbox_id):
        grant = grant_of(app, mailbox_id)
        if grant is None:
            return None
        if not force and _fresh_enough(grant, datetime.now(UTC)):
            return grant.access_token
        endpoints = endpoints_of(app, grant.provider)
        try:
            tokens = oauth2.refresh(endpoints, grant.refresh_token)
        except OAuthRevoked:
            again = grant_of(app, mailbox_id)  # another process may have rotated it
            if again is None or again.refresh_token == grant.refresh_token:
                raise
            tokens = oauth2.refresh(endpoints, again.refresh_token)
        store_tokens(app, mailbox_id, grant.provider, tokens)
        return tokens.access_token


def with_token(
    app: App, mailbox_id: int, settings: ServerSettings, *, force: bool = False
) -> ServerSettings:
    """`settings` carrying the mailbox's current access token (unchanged for passwords)."""
    token = current_token(app, mailbox_id, force=force)
    if token is None:
        return settings
    return replace(settings, access_token=token, password="")


def connect_with_token(
    app: App, mailbox_id: int, settings: ServerSettings, connect: Callable[[ServerSettings], T]
) -> T:
    """`connect(settings)` with a fresh token; on TokenRejected, refresh once and retry once."""
    fresh = with_token(app, mailbox_id, settings)
    try:
        return connect(fresh)
    except TokenRejected:
        if not fresh.uses_token:
            raise
    return connect(with_token(app, mailbox_id, settings, force=True))


def is_oauth(app: App, mailbox_id: int) -> bool:
    """Whether the mailbox signs in with OAuth (its own short read: call it with no
    transaction open in this thread, or use `mailboxes.oauth.has_grant` in that session)."""
    with app.sessions() as session:
        return has_grant(session, mailbox_id)


def fresh_reopen(app: App, mailbox_id: int, reopen: Callable[[], T]) -> Callable[[], T]:
    """A source's `reopen` (a partial over its settings) with a token fresh right now.

    Fetch worker processes log in with the settings they are handed: a token that was
    fresh when the sync connected may be near its end by the time a big folder's workers
    start, so it is refreshed before the settings are handed over."""
    if not isinstance(reopen, functools.partial) or not reopen.args:
        return reopen
    settings = reopen.args[0]
    if not isinstance(settings, ServerSettings) or not settings.uses_token:
        return reopen
    fresh = with_token(app, mailbox_id, settings)
    return functools.partial(reopen.func, fresh, *reopen.args[1:], **reopen.keywords)
