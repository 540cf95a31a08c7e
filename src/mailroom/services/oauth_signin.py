"""OAuth sign-in use cases: start a sign-in, finish it from the provider's redirect, and
reconnect a mailbox whose grant died (`mailroom mailbox reconnect ID`).

A new mailbox signed in with OAuth is connected by `mailbox_setup.connect_mailbox` with
`NewMailbox.oauth` (one path: log in first, then save). The interfaces own the browser
side (the CLI's loopback listener, the dashboard's callback route); these functions only
build the URL, check the redirect and exchange the code.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace

from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors import oauth2
from mailroom.connectors.presets import PRESETS, ProviderPreset
from mailroom.crm.access import Viewer
from mailroom.errors import BadInput, OAuthRevoked, UserError
from mailroom.mailboxes.oauth import get_provider, save_grant
from mailroom.mailboxes.status import reenable
from mailroom.mailboxes.store import incoming_settings
from mailroom.mailboxes.tokens import endpoints_of, grant_of
from mailroom.outbox.smtp_settings import smtp_settings
from mailroom.services.lookup import load_mailbox, require_owner
from mailroom.services.mailbox_checks import (
    LOGIN_TIMEOUT,
    SmtpInput,
    probe_incoming,
    probe_smtp,
    smtp_row,
)
from mailroom.services.mailbox_setup import OAuthSignIn

PRESET_OF = {"google": "gmail", "microsoft": "microsoft365"}
SIGN_IN_TIMEOUT = 300.0  # the contract: a clear error within 5 minutes


def preset_for(provider: str) -> ProviderPreset:
    """The server preset of an OAuth provider (its IMAP, POP3 and SMTP hosts)."""
    return PRESETS[PRESET_OF[get_provider(provider).name]]


def start_sign_in(
    app: App, *, provider: str, login_hint: str, redirect_uri: str
) -> oauth2.PendingAuthorization:
    """The provider's sign-in URL (state, PKCE S256, login_hint, the provider's scopes)."""
    chosen = get_provider(provider)
    return oauth2.start_authorization(
        endpoints_of(app, chosen.name),
        redirect_uri=redirect_uri,
        scopes=chosen.scopes,
        login_hint=login_hint,
        extra_params=chosen.extra_params,
    )


class SignInRefused(UserError):
    """The provider's redirect or token endpoint refused this sign-in (declined consent,
    an expired or reused code, a policy): the message says which, the hint what to do."""

    kind = "oauth_sign_in_refused"


# The provider's `error` on the redirect (RFC 6749 §4.1.2.1, OpenID Connect §3.1.2.6) →
# what happened, and how to fix it. {title}: Google or Microsoft.
PROVIDER_ERRORS: dict[str, tuple[str, str]] = {
    "access_denied": (
        "The sign-in at {title} was cancelled or access was not allowed.",
        "Sign in again and allow Mailroom access; if your organisation blocks the app, "
        "ask your {title} administrator to allow it.",
    ),
    "consent_required": (
        "{title} needs your consent before Mailroom can read your mail.",
        "Sign in again and allow access.",
    ),
    "interaction_required": (
        "{title} needs you to sign in interactively (for example a second factor).",
        "Sign in again and complete every step at {title}.",
    ),
    "login_required": ("{title} needs you to sign in.", "Sign in again."),
    "invalid_scope": (
        "{title} refused the mail permissions Mailroom asks for (IMAP, POP3, SMTP).",
        "Ask the operator to allow these permissions for Mailroom's OAuth client.",
    ),
    "unauthorized_client": (
        "{title} does not allow Mailroom's OAuth client to sign in this way.",
        "Ask the operator to check the client: mailroom oauth set google|microsoft …",
    ),
    "invalid_client": (
        "{title} does not know Mailroom's OAuth client.",
        "Ask the operator to check the client: mailroom oauth set google|microsoft …",
    ),
    "server_error": ("{title} failed to complete the sign-in.", "Try again in a few minutes."),
    "temporarily_unavailable": (
        "{title} could not complete the sign-in right now.",
        "Try again in a few minutes.",
    ),
}
UNKNOWN_PROVIDER_ERROR = ("{title} refused the sign-in ({error}).", "Sign in again.")


def provider_refusal(provider: str, error: str) -> SignInRefused:
    """The clear error for a provider's `error` code on the redirect."""
    title = get_provider(provider).title
    code = error[:60] if error.replace("_", "").isalnum() else "unknown"
    message, hint = PROVIDER_ERRORS.get(code, UNKNOWN_PROVIDER_ERROR)
    return SignInRefused(message.format(title=title, error=code), hint=hint.format(title=title))


def finish_sign_in(
    app: App, *, provider: str, pending: oauth2.PendingAuthorization, callback_url: str
) -> OAuthSignIn:
    """Check the redirect's state, exchange its code (with the PKCE verifier): the tokens.

    A provider's refusal on the redirect (`error=access_denied` …) and a code the token
    endpoint refuses (`invalid_grant`: expired or already used) are `SignInRefused` with
    a message that says which and what to do."""
    chosen = get_provider(provider)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback_url).query))
    try:
        code = oauth2.code_from_callback(pending, callback_url)  # checks the state first
    except OAuthRevoked:
        raise provider_refusal(chosen.name, query.get("error", "")) from None
    try:
        tokens = oauth2.exchange_code(endpoints_of(app, chosen.name), pending, code)
    except OAuthRevoked:
        raise SignInRefused(
            f"{chosen.title} did not accept the sign-in: its code expired or was already used.",
            hint=f"Sign in with {chosen.title} again.",
        ) from None
    return OAuthSignIn(chosen.name, tokens)


def reconnect_mailbox(
    *,
    session: Session,
    app: App,
    mailbox_id: int,
    sign_in: OAuthSignIn,
    viewer: Viewer | None = None,
) -> None:
    """Log in with the new grant (incoming, and SMTP when set), then replace the stored
    grant and re-enable the mailbox (committed here); a failed login saves nothing."""
    mailbox = require_owner(
        load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer), viewer=viewer
    )
    token = sign_in.tokens.access_token
    incoming = replace(
        incoming_settings(mailbox, app.secrets),
        password="",
        access_token=token,
        timeout=LOGIN_TIMEOUT,
    )
    row = smtp_row(session, mailbox_id=mailbox.id)
    smtp = None
    if row is not None:
        smtp = replace(
            smtp_settings(mailbox, row, app.secrets, bearer=True),
            access_token=token,
            timeout=LOGIN_TIMEOUT,
        )
    protocol = mailbox.protocol
    session.rollback()  # no transaction open while logging in
    probe_incoming(protocol=protocol, settings=incoming)
    if smtp is not None:
        probe_smtp(settings=smtp)
    try:
        mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
        save_grant(session, app.secrets, mailbox=mailbox, grant=sign_in.grant())
        reenable(mailbox)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def provider_of(app: App, mailbox_id: int) -> str:
    """The OAuth provider a mailbox signed in with; `BadInput` for a password mailbox."""
    grant = grant_of(app, mailbox_id)
    if grant is None:
        raise BadInput(
            f"Mailbox {mailbox_id} signs in with a password, not OAuth.",
            hint=f"Enter its new password with `mailroom mailbox edit {mailbox_id} "
            "--password-stdin`.",
        )
    return grant.provider


def address_of(app: App, mailbox_id: int, viewer: Viewer | None = None) -> str:
    """The mailbox's login name (the address the sign-in is for)."""
    with app.sessions() as session:
        return load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer).username


def oauth_servers(
    provider: str,
    *,
    protocol: str = "imap",
    host: str | None = None,
    port: int | None = None,
    security: str | None = None,
    smtp_host: str | None = None,
    smtp_port: int | None = None,
    smtp_security: str | None = None,
) -> dict[str, object]:
    """A new OAuth mailbox's servers: the provider's preset, each field overridable.

    SMTP is set up with the preset's server when no incoming host is given, or with the
    given `smtp_host`; with only an incoming host given (a test server), there is none."""
    preset = preset_for(provider)
    pop3 = protocol == "pop3"
    default_host = preset.pop3_host if pop3 else preset.imap_host
    chosen: dict[str, object] = {
        "protocol": protocol,
        "host": host or default_host or "",
        "port": port or (preset.pop3_port if pop3 else preset.imap_port),
        "security": security or "ssl",
    }
    if smtp_host or host is None:
        chosen["smtp"] = SmtpInput(
            host=smtp_host or preset.smtp_host or "",
            port=smtp_port or preset.smtp_port,
            security=smtp_security or preset.smtp_security.value,
            preset=None if smtp_host else preset.name,
        )
    return chosen
