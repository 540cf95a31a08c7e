"""OAuth sign-in from the dashboard: "Sign in with Google/Microsoft", Reconnect, and an
admin's request that a user sign a mailbox in ("transparent sync").

The same sign-in as the CLI's (services.oauth_signin: `start_sign_in` builds the URL with
state and PKCE, `finish_sign_in` exchanges the code, then `connect_mailbox` or
`reconnect_mailbox` log in before they save); what differs is where the state lives until
the provider redirects back:

- `begin_sign_in` stores the pending sign-in server-side (`oauth_pending`): the SHA-256 of
  its state, the PKCE verifier encrypted, the web session and user it belongs to, what it
  is for, and a short expiry (`PENDING_LIFETIME`); the redirect URI is
  `{MAILROOM_PUBLIC_URL}/oauth/callback`;
- `finish_from_callback` takes (deletes, committed) the pending row whose state digest
  matches AND whose web session and user are the caller's, before anything else: a
  missing, foreign, expired or reused state is refused with nothing stored (CSRF, RFC 6749
  §10.12); then the provider's error, the code exchange and the IMAP/SMTP logins run with
  no transaction open; the mailbox is saved only after they succeed.

An admin's request (`request_sign_in`) names a user of the company and a provider (and,
for a reconnect, a mailbox of that user); the user is told by a notice mail and on "My
mailboxes", and completes it with their own provider account: the mailbox is theirs.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors.oauth2 import PendingAuthorization
from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import FolderState, Mailbox, User
from mailroom.db.oauth_models import MailboxOAuth, OAuthPending, OAuthRequest
from mailroom.db.times import as_utc
from mailroom.errors import BadInput, NotFound
from mailroom.mailboxes.oauth import PROVIDERS, get_provider, has_grant, list_clients, load_grant
from mailroom.outbox.notices import send_notice
from mailroom.services.host_policy import HostPolicy
from mailroom.services.lookup import load_mailbox, require_owner
from mailroom.services.mailbox_setup import NewMailbox, connect_mailbox, since_of
from mailroom.services.oauth_signin import (
    finish_sign_in,
    oauth_servers,
    reconnect_mailbox,
    start_sign_in,
)

CALLBACK_PATH = "/oauth/callback"
PENDING_LIFETIME = timedelta(minutes=10)
PENDING_PER_SESSION = 5  # sign-ins under way at once in one browser (tabs)
SECURITIES = ("", "ssl", "starttls")


class SignInStateRefused(BadInput):
    """The callback's state is missing, unknown, expired, used, or another session's."""

    kind = "oauth_state"


@dataclass(frozen=True, slots=True)
class WebServers:
    """What a dashboard sign-in connects: the address, the servers (empty: the provider's
    preset) and the backfill window. Stored as JSON with the pending sign-in."""

    address: str = ""
    protocol: str = "imap"
    host: str = ""
    port: int | None = None
    security: str = ""
    smtp_host: str = ""
    smtp_port: int | None = None
    smtp_security: str = ""
    backfill: str = "90"
    allow_self_signed: bool = False

    def checked(self) -> WebServers:
        """Itself, once every field is one Mailroom accepts; `BadInput` otherwise."""
        since_of(self.backfill)
        if self.protocol not in ("imap", "pop3"):
            raise BadInput(f"Unknown protocol {self.protocol!r}.", hint="Use imap or pop3.")
        if self.security not in SECURITIES or self.smtp_security not in SECURITIES:
            raise BadInput("Security must be SSL/TLS or STARTTLS for an OAuth mailbox.")
        if self.address and "@" not in self.address:
            raise BadInput(f"{self.address!r} is not an email address.")
        return self


def redirect_uri(app: App) -> str:
    """Where the provider sends the browser back: `{public_url}/oauth/callback`."""
    return app.settings.public_url.rstrip("/") + CALLBACK_PATH


def state_digest(state: str) -> str:
    """The stored form of a state (the state itself never rests in the database)."""
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def _verifier_context(digest: str) -> str:
    return f"oauth-pending:{digest}"


# -- what the page shows ----------------------------------------------------------------


def sign_in_buttons(session: Session) -> list[dict[str, str]]:
    """The providers the operator registered a client for: one button each."""
    registered = {c.provider for c in list_clients(session)}
    return [{"name": p.name, "title": p.title} for p in PROVIDERS.values() if p.name in registered]


def authorize_origins(session: Session) -> list[str]:
    """The origins (scheme://host[:port]) of the registered providers' authorization
    endpoints: the sign-in forms' CSP `form-action` must allow the redirect to them."""
    found = []
    for row in list_clients(session):
        url = row.authorize_url or get_provider(row.provider).authorize_url
        parts = urllib.parse.urlsplit(url)
        found.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(found))


def open_requests(session: Session, *, viewer: Viewer) -> list[dict[str, Any]]:
    """Admins' sign-in requests the viewer has yet to complete, oldest first."""
    rows = session.scalars(
        select(OAuthRequest)
        .where(OAuthRequest.user_id == viewer.user_id, OAuthRequest.completed_at.is_(None))
        .order_by(OAuthRequest.id)
    )
    found = []
    for row in rows:
        admin = session.get(User, row.requested_by_id) if row.requested_by_id else None
        found.append(
            {
                "id": row.id,
                "provider": row.provider,
                "title": get_provider(row.provider).title,
                "mailbox_id": row.mailbox_id,
                "requested_by": admin.email if admin is not None else "an admin",
            }
        )
    return found


def revoked_mailboxes(session: Session, *, viewer: Viewer) -> list[dict[str, Any]]:
    """The OAuth mailboxes whose grant died, that the viewer owns or (an admin) oversees."""
    boxes = access.visible_mailboxes(session, viewer=viewer)
    found = []
    for m in boxes:
        if m.error_kind != "oauth_revoked":
            continue
        owner = session.get(User, m.user_id)
        provider = session.scalar(
            select(MailboxOAuth.provider).where(MailboxOAuth.mailbox_id == m.id)
        )
        found.append(
            {
                "id": m.id,
                "address": m.username,
                "own": m.user_id == viewer.user_id,
                "owner": owner.email if owner is not None else "",
                "provider": provider or "",
            }
        )
    return found


def request_targets(session: Session, *, viewer: Viewer) -> list[str]:
    """For an admin: the company's users one may ask to sign in (none for a member)."""
    if not viewer.is_admin:
        return []
    return list(
        session.scalars(
            select(User.email).where(User.company_id == viewer.company_id).order_by(User.email)
        )
    )


def synced_folders(session: Session, *, viewer: Viewer) -> dict[int, list[str]]:
    """The folders a sync found in each of the viewer's own mailboxes (a mailbox signed in
    with a provider follows every folder: this is what "connected and tested" lists)."""
    rows = session.execute(
        select(FolderState.mailbox_id, FolderState.name)
        .join(Mailbox, Mailbox.id == FolderState.mailbox_id)
        .where(Mailbox.user_id == viewer.user_id)
        .order_by(FolderState.mailbox_id, FolderState.name)
    )
    found: dict[int, list[str]] = {}
    for mailbox_id, name in rows:
        found.setdefault(mailbox_id, []).append(name)
    return found


def page_values(session: Session, *, viewer: Viewer) -> dict[str, Any]:
    """What "My mailboxes" shows of OAuth: buttons, requests, revoked banners, targets."""
    return {
        "oauth_buttons": sign_in_buttons(session),
        "oauth_origins": authorize_origins(session),
        "oauth_requests": open_requests(session, viewer=viewer),
        "oauth_revoked": revoked_mailboxes(session, viewer=viewer),
        "oauth_targets": request_targets(session, viewer=viewer),
        "synced_folders": synced_folders(session, viewer=viewer),
    }


# -- start ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    provider: str
    login_hint: str
    servers: WebServers
    mailbox_id: int | None = None
    request_id: int | None = None


def begin_sign_in(
    *,
    session: Session,
    app: App,
    viewer: Viewer,
    web_session_id: int,
    provider: str = "",
    servers: WebServers | None = None,
    mailbox_id: int | None = None,
    request_id: int | None = None,
) -> str:
    """Start a dashboard sign-in: a new mailbox (`provider`, `servers`), a reconnect
    (`mailbox_id`, owner only) or an admin's request (`request_id`, its user only).
    Stores the pending sign-in (committed) and returns the provider's URL to go to."""
    if request_id is not None:
        target = _request_target(session, viewer=viewer, request_id=request_id, given=servers)
    elif mailbox_id is not None:
        target = _reconnect_target(session, app, viewer=viewer, mailbox_id=mailbox_id)
    else:
        chosen = (servers or WebServers()).checked()
        target = _Target(get_provider(provider).name, chosen.address or viewer.email, chosen)
    session.rollback()
    pending = start_sign_in(
        app, provider=target.provider, login_hint=target.login_hint, redirect_uri=redirect_uri(app)
    )
    digest = state_digest(pending.state)
    now = datetime.now(UTC)
    try:
        session.execute(delete(OAuthPending).where(OAuthPending.expires_at < now))
        _keep_newest(session, web_session_id=web_session_id)
        session.add(
            OAuthPending(
                state_digest=digest,
                web_session_id=web_session_id,
                user_id=viewer.user_id,
                provider=target.provider,
                verifier=app.secrets.encrypt(
                    pending.code_verifier, context=_verifier_context(digest)
                ),
                redirect_uri=pending.redirect_uri,
                mailbox_id=target.mailbox_id,
                request_id=target.request_id,
                servers=json.dumps(asdict(target.servers)),
                created_at=now,
                expires_at=now + PENDING_LIFETIME,
            )
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return pending.url


def _keep_newest(session: Session, *, web_session_id: int) -> None:
    """At most `PENDING_PER_SESSION` sign-ins under way per browser: the oldest go."""
    older = list(
        session.scalars(
            select(OAuthPending.id)
            .where(OAuthPending.web_session_id == web_session_id)
            .order_by(OAuthPending.id.desc())
            .offset(PENDING_PER_SESSION - 1)
        )
    )
    if older:
        session.execute(delete(OAuthPending).where(OAuthPending.id.in_(older)))


def _reconnect_target(session: Session, app: App, *, viewer: Viewer, mailbox_id: int) -> _Target:
    mailbox = require_owner(
        load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer), viewer=viewer
    )
    grant = load_grant(session, app.secrets, mailbox=mailbox)
    if grant is None:
        raise BadInput(
            f"Mailbox {mailbox.address} signs in with a password, not with a provider.",
            hint="Change its password under Settings and password.",
        )
    return _Target(grant.provider, mailbox.username, WebServers(), mailbox_id=mailbox.id)


def _request_target(
    session: Session, *, viewer: Viewer, request_id: int, given: WebServers | None
) -> _Target:
    """The request's sign-in; the user (who will own the mailbox) may name its servers."""
    row = session.get(OAuthRequest, request_id)
    if row is None or row.user_id != viewer.user_id or row.completed_at is not None:
        raise NotFound(
            "This sign-in request does not exist or was already completed.",
            hint="Reload My mailboxes.",
        )
    servers = WebServers(**json.loads(row.servers)) if row.servers else WebServers()
    if given is not None and given.host:
        servers = given.checked()
    elif given is not None and given.address:
        servers = replace(servers, address=given.address)
    if row.mailbox_id is not None:
        mailbox = load_mailbox(session, mailbox_id=row.mailbox_id, viewer=viewer)
        return _Target(
            row.provider, mailbox.username, servers, mailbox_id=row.mailbox_id, request_id=row.id
        )
    return _Target(row.provider, servers.address or viewer.email, servers, request_id=row.id)


# -- the callback -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInDone:
    """A finished dashboard sign-in: the mailbox, and whether it was a reconnect."""

    mailbox_id: int
    reconnected: bool


@dataclass(frozen=True, slots=True)
class _Taken:
    provider: str
    pending: PendingAuthorization
    servers: WebServers
    mailbox_id: int | None
    request_id: int | None


def finish_from_callback(
    *,
    session: Session,
    app: App,
    viewer: Viewer,
    web_session_id: int,
    params: Mapping[str, str],
    network: HostPolicy,
) -> SignInDone:
    """The provider's redirect: take the pending sign-in its state names (this session's
    only, once), then the provider's answer, the code exchange, the logins, and the save.

    `SignInStateRefused` (nothing stored, nothing exchanged) for a missing, foreign,
    expired or reused state; `SignInRefused` for a refusal by the provider."""
    taken = _take_pending(
        session, app, state=params.get("state", ""), web_session_id=web_session_id, viewer=viewer
    )
    callback = "?" + urllib.parse.urlencode(dict(params))
    signed_in = finish_sign_in(  # no transaction open: _take_pending committed
        app, provider=taken.provider, pending=taken.pending, callback_url=callback
    )
    if taken.mailbox_id is not None:
        reconnect_mailbox(
            session=session, app=app, mailbox_id=taken.mailbox_id, sign_in=signed_in, viewer=viewer
        )
        mailbox_id, reconnected = taken.mailbox_id, True
    else:
        mailbox_id, reconnected = (
            _connect_new(session, app, viewer, taken, signed_in, network),
            False,
        )
    _complete_requests(
        session, request_id=taken.request_id, mailbox_id=mailbox_id, reconnected=reconnected
    )
    return SignInDone(mailbox_id=mailbox_id, reconnected=reconnected)


def _take_pending(
    session: Session, app: App, *, state: str, web_session_id: int, viewer: Viewer
) -> _Taken:
    refused = SignInStateRefused(
        "This sign-in answer does not belong to a sign-in you started here, or it was "
        "already used or has expired. Nothing was saved.",
        hint="Start the sign-in again from My mailboxes.",
    )
    if not state:
        raise refused
    digest = state_digest(state)
    try:
        row = session.scalar(select(OAuthPending).where(OAuthPending.state_digest == digest))
        if row is None or row.web_session_id != web_session_id or row.user_id != viewer.user_id:
            raise refused
        session.delete(row)  # single use, whatever follows
        session.commit()
    except BaseException:
        session.rollback()
        raise
    expires = as_utc(row.expires_at)
    if expires is None or expires < datetime.now(UTC):
        raise refused
    verifier = app.secrets.decrypt(row.verifier, context=_verifier_context(digest))
    return _Taken(
        provider=row.provider,
        pending=PendingAuthorization("", row.redirect_uri, state, verifier),
        servers=WebServers(**json.loads(row.servers)) if row.servers else WebServers(),
        mailbox_id=row.mailbox_id,
        request_id=row.request_id,
    )


def _connect_new(
    session: Session,
    app: App,
    viewer: Viewer,
    taken: _Taken,
    signed_in: Any,
    network: HostPolicy,
) -> int:
    servers = taken.servers
    chosen = oauth_servers(
        taken.provider,
        protocol=servers.protocol,
        host=servers.host or None,
        port=servers.port,
        security=servers.security or None,
        smtp_host=servers.smtp_host or None,
        smtp_port=servers.smtp_port,
        smtp_security=servers.smtp_security or None,
    )
    new = NewMailbox(
        password="",
        oauth=signed_in,
        username=servers.address or viewer.email,
        since=since_of(servers.backfill),
        allow_self_signed=servers.allow_self_signed,
        **chosen,  # type: ignore[arg-type]
    )
    user = session.get(User, viewer.user_id)
    if user is None:
        raise NotFound("Your user no longer exists.")
    return connect_mailbox(session=session, app=app, user=user, new=new, network=network)


def _complete_requests(
    session: Session, *, request_id: int | None, mailbox_id: int, reconnected: bool
) -> None:
    """The request this sign-in answered, and (a reconnect) every open request to sign
    that mailbox in again, are done."""
    query = select(OAuthRequest).where(OAuthRequest.completed_at.is_(None))
    if reconnected:
        query = query.where(
            (OAuthRequest.id == request_id) | (OAuthRequest.mailbox_id == mailbox_id)
        )
    elif request_id is not None:
        query = query.where(OAuthRequest.id == request_id)
    else:
        return
    try:
        for row in session.scalars(query):
            row.completed_at = datetime.now(UTC)
            row.mailbox_id = mailbox_id
        session.commit()
    except BaseException:
        session.rollback()
        raise


# -- an admin's request -----------------------------------------------------------------


def request_sign_in(
    *,
    session: Session,
    app: App,
    viewer: Viewer,
    user_email: str,
    provider: str,
    servers: WebServers | None = None,
    mailbox_id: int | None = None,
) -> int:
    """An admin asks a user of the company to sign a mailbox in (or a revoked one in
    again): stored, shown on the user's My mailboxes, and mailed to them through the
    company's notice mailbox. The request's id."""
    access.require_admin(viewer)
    chosen = get_provider(provider)
    email = user_email.strip().lower()
    user = session.scalar(
        select(User).where(User.company_id == viewer.company_id, User.email == email)
    )
    if user is None:
        raise NotFound(f"No user {email} in your company.", hint="Add the user first.")
    if mailbox_id is not None:
        mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
        if mailbox.user_id != user.id or not has_grant(session, mailbox.id):
            raise BadInput(f"Mailbox {mailbox.address} is not {email}'s provider sign-in.")
    row = OAuthRequest(
        company_id=viewer.company_id,
        user_id=user.id,
        requested_by_id=viewer.user_id,
        provider=chosen.name,
        mailbox_id=mailbox_id,
        servers=json.dumps(asdict((servers or WebServers()).checked())),
    )
    session.add(row)
    session.flush()
    send_notice(
        session,
        company_id=viewer.company_id,
        key=f"oauth_request:{row.id}",
        to=[user.email],
        subject=f"Mailroom: please sign in with {chosen.title}",
        text=(
            f"{viewer.email} asked you to connect your {chosen.title} mailbox to Mailroom.\n\n"
            f"Open {app.settings.public_url}/mailboxes and click "
            f'"Sign in with {chosen.title}".\n'
        ),
    )
    session.commit()
    return row.id
