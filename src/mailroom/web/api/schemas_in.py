"""The JSON bodies the REST API accepts (published in the OpenAPI schema).

Names follow the CLI's options (`mailroom send --to/--cc/--subject/--reply-to-message`,
`mailroom mailbox add`, `mailroom rules add`, `mailroom blocklist add`), so a script moves
between the CLI and the API without renaming. Unknown fields are refused (422), so a typo
never silently drops a setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Security = Literal["ssl", "starttls", "none"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachmentIn(Strict):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field("application/octet-stream", max_length=255)
    data: str = Field(description="The file's bytes, base64-encoded.", max_length=40_000_000)


class SendIn(Strict):
    mailbox_id: int = Field(ge=1, le=2**62, description="One of your own mailboxes.")
    to: list[str] = Field(min_length=1, max_length=500)
    cc: list[str] = Field(default_factory=list, max_length=500)
    bcc: list[str] = Field(default_factory=list, max_length=500)
    subject: str = Field("", max_length=998)
    text: str = Field("", max_length=1_000_000)
    html: str | None = Field(None, max_length=2_000_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    reply_to: int | None = Field(
        None, ge=1, le=2**62, description="The `id` of the message answered (threads under it)."
    )
    record: str | None = Field(
        None, max_length=40, description="TYPE:ID sent from; a case adds `[Case #ID]`."
    )
    forward_of: int | None = Field(
        None,
        ge=1,
        le=2**62,
        description="The `id` of a message to forward: its text below yours, its "
        "attachments attached, `Fwd:` before the subject.",
    )
    quote: bool = Field(
        False, description="With `reply_to`: quote the message answered below the text."
    )
    signature: bool = Field(
        True, description="Append your signature (Account) below the text, after `-- `."
    )


class SignatureIn(Strict):
    signature: str = Field(max_length=2000, description="Plain text; empty for none.")


class SentOut(BaseModel):
    entry_id: int
    message_id: str
    status: str = Field(description="sent, or queued (retried later), failed or held.")
    message: int | None = Field(description="The logged message's `id` once sent.")
    note: str | None = None


class LinkIn(Strict):
    record: str = Field(max_length=40, description="TYPE:ID, e.g. contact:12.")


class LinksOut(BaseModel):
    message: int
    records: dict[str, str] = Field(description="TYPE:ID → the reason of the link.")


class AliasIn(Strict):
    address: str = Field(min_length=3, max_length=320)


class SmtpIn(Strict):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(587, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = Field(None, max_length=320, description="Default: the IMAP login.")
    password: str | None = Field(None, max_length=1000, description="Needed with a username.")


class MailboxIn(Strict):
    protocol: Literal["imap", "pop3"] = "imap"
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(993, ge=1, le=65535)
    security: Security = "ssl"
    username: str | None = Field(None, max_length=320, description="Default: your email.")
    password: str = Field(min_length=1, max_length=1000)
    allow_self_signed: bool = False
    folders: list[str] = Field(default_factory=list, max_length=200)
    backfill: str = Field("90", max_length=6, description="Days of past mail, or `all`.")
    aliases: list[str] = Field(default_factory=list, max_length=50)
    smtp: SmtpIn | None = None


class MailboxEditIn(Strict):
    password: str = Field(min_length=1, max_length=1000, description="Tested before it is saved.")


class TestOut(BaseModel):
    ok: bool
    lines: list[str]
    error: str | None = None
    hint: str | None = None


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=60)
    action: str = Field(max_length=20, description="ignore, create-lead, create-contact, …")
    conditions: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = Field("", max_length=500)
    position: int | None = Field(None, ge=1, le=10_000)


class RuleEditIn(Strict):
    """A change to a rule: fields left out stay; the name and position never change."""

    action: str | None = Field(None, max_length=20)
    conditions: dict[str, Any] | None = Field(None, description="Replaces all conditions.")
    params: dict[str, Any] | None = None
    description: str | None = Field(None, max_length=500)


class RuleOut(BaseModel):
    name: str
    position: int
    description: str
    conditions: dict[str, Any]
    action: str
    params: dict[str, Any]
    enabled: bool


class RuleOrderIn(Strict):
    names: list[str] = Field(min_length=1, max_length=1000)


class TrialOut(BaseModel):
    message_id: str
    subject: str
    matched: bool
    would: str


class BlockIn(Strict):
    entry: str = Field(min_length=1, max_length=320, description="An address or @domain.")
    user: str | None = Field(None, max_length=320, description="Only this user's mailboxes.")


class BlockOut(BaseModel):
    entry: str
    user: str | None
    builtin: bool


class SettingsIn(Strict):
    visibility: Literal["transparent", "strict"] | None = None
    retention_days: int | None = Field(None, ge=1, le=36500)
    retention_enabled: bool | None = None
    mailbox_limit: int | None = Field(None, ge=0, le=10**9)
    no_mailbox_limit: bool = Field(False, description="Remove the mailbox limit.")
    notice_mailbox_id: int | None = Field(
        None, ge=1, description="The mailbox the company's notices are sent from."
    )
    no_notice_mailbox: bool = Field(False, description="Send no notices by mail.")


class SettingsOut(BaseModel):
    visibility: str
    retention_days: int
    retention_enabled: bool
    retention_would_delete: int = Field(
        0,
        description="Unlinked messages older than retention_days: what the sweep deletes "
        "now if retention is on (or would, if turned on).",
    )
    mailbox_limit: int | None
    notice_mailbox_id: int | None


class DropboxIn(Strict):
    rotate: bool = False
    unknown_senders: Literal["refuse", "quarantine"] | None = None


class DropboxOut(BaseModel):
    address: str
    unknown_senders: str


RecordKind = Literal["lead", "contact", "account", "case", "opportunity"]


def _check_address(value: str) -> str:
    from mailroom.mail.addresses import normalise

    if normalise(value) is None:
        raise ValueError(f"{value!r} is not an email address")
    return value


def _check_domain(value: str) -> str:
    from mailroom.mail.domains import normalise_domain

    if normalise_domain(value) is None:
        raise ValueError(f"{value!r} is not a domain name")
    return value


class EmailIn(Strict):
    address: str = Field(min_length=3, max_length=320)
    field: str | None = Field(
        None, max_length=100, description="main, secondary or any name; default: the first is main."
    )

    @field_validator("address")
    @classmethod
    def _valid(cls, value: str) -> str:
        return _check_address(value)


class RecordFieldsIn(Strict):
    """What `POST /records` and `PATCH /records/{type}/{id}` accept (PATCH: any subset)."""

    name: str | None = Field(None, max_length=300)
    emails: list[EmailIn] | None = Field(None, max_length=100, description="Replaces the list.")
    domains: list[str] | None = Field(None, max_length=100, description="Replaces the list.")
    account_id: int | None = Field(None, ge=1, le=2**62, description="The account it belongs to.")
    owner_id: int | None = Field(None, ge=1, le=2**62, description="A user of your company.")
    fields: dict[str, Any] | None = Field(
        None, max_length=100, description="Merged into the record's fields; null removes one."
    )

    @field_validator("domains")
    @classmethod
    def _valid_domains(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for item in value:
                _check_domain(item)
        return value


class RecordIn(RecordFieldsIn):
    type: RecordKind


class RecordPatchIn(RecordFieldsIn):
    type: RecordKind | None = Field(None, description="A new type (a lead becomes a contact).")


class MergeIn(Strict):
    from_: str = Field(
        alias="from", min_length=3, max_length=40, description="TYPE:ID merged into this record."
    )


class FromMessageIn(Strict):
    type: Literal["lead", "contact", "case"]
    use: Literal["from", "reply-to"] = "from"
