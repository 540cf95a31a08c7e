"""`GET /api/v1/discover?email=…`: an address's IMAP, POP3 and SMTP servers, and the source
that gave them (services.discovery; the same JSON as `mailroom mailbox discover --json`).

Nothing found is an answer, not an error: 200 with `found` false and a hint to enter the
servers by hand. The web's host policy applies: an autoconfig host on a non-public
address is not fetched, and a lookup that goes to the network counts as one connection
test in the caller's per-minute limit (429 past it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from mailroom.services.discovery import discover, options_from
from mailroom.web.api.schemas import ERRORS, ErrorOut
from mailroom.web.deps import ApiCtx, get_app, host_policy

router = APIRouter(tags=["mailboxes"], responses=ERRORS)

Source = Literal["preset", "autoconfig", "srv", "mx"]  # services.discovery.SOURCES


class ServerOut(BaseModel):
    """One server: where it is and how the connection is protected."""

    host: str
    port: int = Field(ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"]


class AttemptOut(BaseModel):
    """What one source tried."""

    source: Source
    found: bool
    notes: list[str]


class DiscoverOut(BaseModel):
    """The servers found for an address, and where they came from."""

    email: str
    domain: str
    found: bool
    source: Source | None = Field(description="Which source gave the servers.")
    detail: str | None = Field(description="The preset, URL, SRV names or MX host used.")
    provider: str | None = Field(description="A built-in preset's name (gmail, …).")
    label: str | None
    oauth: Literal["google", "microsoft"] | None = Field(
        description="The provider signs in with OAuth: show its sign-in button."
    )
    username: str
    imap: ServerOut | None
    pop3: ServerOut | None
    smtp: ServerOut | None
    tried: list[AttemptOut]
    hint: str | None


@router.get(
    "/discover",
    response_model=DiscoverOut,
    responses={429: {"model": ErrorOut, "description": "Too many lookups in a minute."}},
)
def discover_servers(
    request: Request, ctx: ApiCtx, email: Annotated[str, Query(min_length=3, max_length=320)]
) -> dict[str, Any]:
    """The IMAP, POP3 and SMTP servers of an address (presets, autoconfig, SRV, MX)."""
    options = options_from(get_app(request).settings)
    return discover(email=email, network=host_policy(request, ctx), options=options)
