"""OAuth client registry use cases: `mailroom oauth set` and `mailroom oauth list`.

The client secret goes straight to the encrypting store (mailboxes/oauth.py) and is never
returned: the listing shows the client id and the endpoints in use, not the secret.
"""

from __future__ import annotations

from typing import Any

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.mailboxes.oauth import PROVIDERS, list_clients, set_client


def register_client(
    app: App,
    *,
    provider: str,
    client_id: str,
    client_secret: str,
    authorize_url: str | None = None,
    token_url: str | None = None,
) -> dict[str, Any]:
    """Register or replace the provider's client; its listing row."""
    with transaction(app.sessions) as session:
        row = set_client(
            session,
            app.secrets,
            provider=provider,
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
        )
        return _row(row.provider, row.client_id, row.authorize_url, row.token_url, row.updated_at)


def clients(app: App) -> list[dict[str, Any]]:
    """Every registered client: provider, client id, effective endpoints, when set."""
    with app.sessions() as session:
        return [
            _row(r.provider, r.client_id, r.authorize_url, r.token_url, r.updated_at)
            for r in list_clients(session)
        ]


def _row(
    provider: str, client_id: str, authorize: str | None, token: str | None, updated: Any
) -> dict[str, Any]:
    defaults = PROVIDERS[provider]
    return {
        "provider": provider,
        "client_id": client_id,
        "authorize_url": authorize or defaults.authorize_url,
        "token_url": token or defaults.token_url,
        "custom_endpoints": bool(authorize or token),
        "updated_at": updated.isoformat() if updated is not None else None,
    }
