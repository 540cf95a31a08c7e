"""The JSON shapes of the REST API (they are what the OpenAPI schema publishes).

Field names follow the CLI's `--json` output: a record is `records list --json`'s row, a
timeline item is `mailroom timeline --json`'s entry (plus `access` and `thread`), so a
script can move between the CLI and the API without renaming anything. Pages are
`{"items": [...], "next": CURSOR or null}`; pass `next` back as `cursor` for the next page.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mailroom.digits import is_number
from mailroom.errors import BadInput

T = TypeVar("T")


class ErrorOut(BaseModel):
    """Every error: what went wrong (`message`) and how to fix it (`hint`)."""

    error: str = Field(description="A stable error kind, e.g. not-found, bad-input, auth.")
    message: str
    hint: str | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class OwnerOut(BaseModel):
    id: int
    email: str
    name: str


class RecordOut(BaseModel):
    id: int
    type: str
    name: str
    emails: list[str]
    email_fields: list[dict[str, str]]
    domains: list[str]
    account: int | None
    owner: OwnerOut | None
    fields: dict[str, Any]


class MailChangeOut(BaseModel):
    linked: int = Field(description="Stored messages linked to the record by this request.")
    queued: int = Field(description="Stored messages being linked in the background.")
    unlinked: int = Field(description="Links removed with the addresses removed.")


class RecordChangeOut(RecordOut):
    mail: MailChangeOut


class TimelineItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    message_id: str
    date: str | None
    direction: str
    from_: str | None = Field(alias="from")
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    records: list[str]
    mailboxes: list[int]
    reasons: dict[str, str]
    parse_error: str | None
    access: str = Field(description="everything, subject or metadata (what you may see).")
    thread: str = Field(description="The conversation's key; equal keys are one thread.")
    conversation: str = Field(
        description="Opaque; equal for every message of one conversation (the whole "
        "References/In-Reply-To chain, or the same subject without Re:/Fwd: between the same "
        "people within 30 days) and only for them."
    )


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    url: str


class LinkedOut(BaseModel):
    record: str = Field(description="TYPE:ID")
    type: str
    id: int
    name: str
    reason: str = Field(description="The stable code, e.g. address:main, domain, manual.")
    why: str = Field(description="The reason in words, e.g. their address, by hand.")


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    message_id: str
    subject: str
    from_: str | None = Field(alias="from")
    from_name: str
    to: list[str]
    cc: list[str]
    date: str | None
    direction: str
    text: str
    html: str = Field(description="Sanitised; remote images are placeholders unless images=true.")
    blocked_images: int
    attachments: list[AttachmentOut]
    records: dict[str, str] = Field(description="TYPE:ID → the reason of the link.")
    linked: list[LinkedOut] = Field(
        default_factory=list, description="The linked records by name, with the reason in words."
    )
    labels: list[str] = Field(
        default_factory=list,
        description="The Gmail labels of the message's copies, sorted (system labels as "
        "Gmail names them, e.g. \\Inbox, \\Sent); empty for mail from other servers "
        "and when your access does not include the body.",
    )
    access: str
    parse_error: str | None


class AliasStateOut(BaseModel):
    """One alias and where its approval stands."""

    address: str
    state: str = Field(
        description="approved, awaiting_admin, awaiting_confirmation, confirmation_expired "
        "or confirmation_not_sent (the company has no notice mailbox)."
    )
    words: str


class MailboxOut(BaseModel):
    id: int
    address: str
    user_id: int
    protocol: str
    host: str
    port: int
    status: str
    last_error: str | None
    hint: str | None = Field(description="How to fix the last error, when there is one.")
    last_success_at: str | None
    enabled: bool
    sharing: str
    quarantined: int = Field(0, description="Messages quarantined: see /quarantine.")
    # The rest of the one mailbox shape (services.mailboxes.mailbox_json, also the CLI's):
    name: str | None = None
    company_id: int | None = None
    security: str | None = None
    username: str | None = None
    aliases: list[str] = Field(default_factory=list)
    pending_aliases: list[str] = Field(
        default_factory=list,
        description="Aliases not approved yet (an admin's approval, or a confirmation mail).",
    )
    alias_states: list[AliasStateOut] = Field(default_factory=list)
    folders: list[str] = Field(default_factory=list)
    status_words: str | None = None
    error_kind: str | None = None
    next_attempt_at: str | None = None
    since: str | None = None
    delete_after_fetch: bool = False
    progress: dict[str, int] = Field(default_factory=dict)
    worker: str | None = Field(
        default=None, description="The process syncing it now (host:pid), when syncing."
    )
    worker_id: int | None = Field(
        default=None, description="PostgreSQL: the id of the worker running its sync job."
    )
    queued: bool = Field(default=False, description="PostgreSQL: a sync of it waits in the queue.")
    queue_depth: int | None = Field(
        default=None, description="PostgreSQL: syncs waiting in the queue, all mailboxes."
    )


class MailboxErrorOut(BaseModel):
    at: str
    kind: str
    message: str
    hint: str | None
    user_fixable: bool | None = None
    retry_at: str | None = None


class QuarantinedOut(BaseModel):
    """A message the server lists but the sync could not fetch (retrying, quarantined or
    dismissed), with its last error."""

    id: int
    mailbox_id: int
    folder: str
    uidvalidity: int
    uid: int
    uidl: str | None = Field(description="POP3: the message's UIDL (uid is its hash).")
    size: int | None
    attempts: int
    state: str = Field(description="retrying | quarantined | dismissed")
    state_words: str
    first_error_at: str | None
    last_error_at: str | None
    last_error: str
    can_retry: bool
    can_dismiss: bool


class SyncQueued(BaseModel):
    mailbox_id: int
    status: str


def encode_cursor(value: int | None) -> str | None:
    if value is None:
        return None
    return base64.urlsafe_b64encode(f"v1:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The position an opaque cursor stands for; `BadInput` (422) if it is not one of ours."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, value = text.partition(":")
    if kind != "v1" or not is_number(value) or len(value) > 18:
        raise BadInput("The cursor is not valid.", hint="Use the `next` value of the last page.")
    return int(value)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No valid `Authorization: Bearer TOKEN`."},
    404: {"model": ErrorOut, "description": "Not found in your company."},
    422: {"model": ErrorOut, "description": "Bad input; `message` says which."},
}
