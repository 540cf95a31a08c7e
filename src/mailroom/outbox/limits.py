"""Provider sending limits, checked before a message is queued, and the daily usage.

A send that would break a limit is refused with the limit named (`LimitExceeded`, a user
error: exit code 1), never handed to the provider to be bounced or to lock the account.
"Per day" is a rolling 24 hours, as most providers count it: every entry queued in that
window counts unless it failed for good (a failed message was never sent). Yahoo and AOL
count recipients, not messages, hence the separate recipients-per-day figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.connectors.presets import ProviderPreset
from mailroom.db.outbox_models import OutboxEntry
from mailroom.errors import UserError

WINDOW = timedelta(hours=24)
COUNTED = ("queued", "sending", "sent", "held")
WAIT_HINT = "Wait until older messages leave the 24-hour window, or send from another mailbox."


class LimitExceeded(UserError):
    """A send would exceed one of the provider's published limits; `limit` names it."""

    kind = "limit"

    def __init__(self, message: str, *, limit: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Usage:
    """What a mailbox sent (or has queued) in the last 24 hours."""

    messages: int
    recipients: int


def usage(session: Session, *, mailbox_id: int, now: datetime) -> Usage:
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(OutboxEntry.recipient_count), 0)).where(
            OutboxEntry.mailbox_id == mailbox_id,
            OutboxEntry.status.in_(COUNTED),
            OutboxEntry.created_at >= now - WINDOW,
        )
    ).one()
    return Usage(messages=int(row[0]), recipients=int(row[1]))


def check_limits(preset: ProviderPreset, *, recipients: int, size: int, used: Usage) -> None:
    """Raise LimitExceeded naming the first limit this message would break."""
    limits, who = preset.limits, preset.label
    if recipients > limits.recipients_per_message:
        raise LimitExceeded(
            f"{who} allows at most {limits.recipients_per_message} recipients per message "
            f"(limit: recipients per message); this message has {recipients}.",
            limit="recipients_per_message",
            hint="Split the recipients over several messages.",
        )
    if size > limits.message_bytes:
        raise LimitExceeded(
            f"{who} takes messages of at most {limits.message_bytes // (1024 * 1024)} MB "
            f"(limit: message size); this message is {size / (1024 * 1024):.1f} MB.",
            limit="message_bytes",
            hint="Send smaller or fewer attachments, or share a link instead.",
        )
    if limits.messages_per_day is not None and used.messages + 1 > limits.messages_per_day:
        raise LimitExceeded(
            f"{who} allows {limits.messages_per_day} messages per day (limit: messages per "
            f"day); this mailbox has sent {used.messages} in the last 24 hours.",
            limit="messages_per_day",
            hint=WAIT_HINT,
        )
    if (
        limits.recipients_per_day is not None
        and used.recipients + recipients > limits.recipients_per_day
    ):
        raise LimitExceeded(
            f"{who} allows {limits.recipients_per_day} recipients per day (limit: recipients "
            f"per day); this mailbox has sent to {used.recipients} in the last 24 hours and "
            f"this message adds {recipients}.",
            limit="recipients_per_day",
            hint=WAIT_HINT,
        )
