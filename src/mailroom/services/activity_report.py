"""The activity report (SharpSpring's "Activity Report"): mail sent and received, counted.

One function, `activity_report`, under the report page, `GET /api/v1/reports/activity`
(JSON and CSV) and `mailroom report activity`. It counts **logged** mail: messages of the
company that are linked to at least one record (what the timelines show), inbound or
outbound (mail among internal people only is never logged), dated within the range
(`date_utc`, UTC days, both ends included). Grouped:

- `user`: each user of the company; a message is a user's when it was copied from one of
  their mailboxes or one of their addresses (sign-in address, mailbox addresses, approved
  aliases) is a participant — the same rule as strict privacy's "own or took part", so a
  message with two users on it counts for both;
- `week`: ISO weeks (Monday first, UTC), every week of the range listed, empty ones too;
- `type`: the record types the messages are linked to (a message linked to a lead and an
  account counts once under each);
- `stage`: opportunities' stage (`stage`, else `status`, else "open"), a message once per
  stage it is linked under.

`user_id` narrows any grouping to one user's mail (by the same rule as `user`): per user
per week is `by="week"` with a user.

Who sees what (docs/decisions/0023-activity-report-and-stored-mail-rules.md): everyone sees
the whole team's rows, as SharpSpring shows the team; an admin's counts cover all the
company's logged mail (admins already see every mailbox's message counts on the health
pages; counts show no content), a member's only the messages they may see — under strict
privacy their own row is complete and a colleague's counts only the mail shared with them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer, privacy_of, viewer_for, visible_messages_clause
from mailroom.db.models import (
    RECORD_TYPES,
    Mailbox,
    MailboxAlias,
    Message,
    MessageAddress,
    MessageCopy,
    MessageLink,
    Record,
    User,
)
from mailroom.db.times import as_utc
from mailroom.errors import BadInput, NotFound

GROUPINGS = ("user", "week", "type", "stage")
DIRECTIONS = ("outbound", "inbound")
DEFAULT_WEEKS = 12
MAX_DAYS = 3 * 366
Logged = Select[int, str, datetime | None]
_COLUMNS = {
    "user": ["user_id", "email", "name"],
    "week": ["week"],
    "type": ["type"],
    "stage": ["stage"],
}


@dataclass(frozen=True, slots=True)
class ActivityReport:
    """The report's rows (each with `sent`, `received`, `total`) and what they cover."""

    by: str
    start: date
    end: date
    rows: list[dict[str, Any]]
    partial: bool  # True when the counts are limited to the mail the viewer may see

    def csv(self) -> str:
        """The rows as CSV text with a header line (the API's `format=csv`)."""
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=[*_COLUMNS[self.by], "sent", "received", "total"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()


EARLIEST = date(1900, 1, 1)  # any earlier date is no mail's; later ones leave room for the
LATEST = date(9999, 12, 30)  # default 12 weeks before `to` and the day after it


def report_range(
    *, start: date | None, end: date | None, today: date | None = None
) -> tuple[date, date]:
    """The range asked for, or the last 12 weeks to today; refused when backwards, longer
    than three years, or outside EARLIEST..LATEST."""
    for day in (start, end):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise BadInput(
                f"{day} is outside the dates a report covers ({EARLIEST} to {LATEST}).",
                hint="Give `from` and `to` as YYYY-MM-DD within that range.",
            )
    end = end or today or datetime.now(UTC).date()
    start = start or (end - timedelta(weeks=DEFAULT_WEEKS) + timedelta(days=1))
    if start > end:
        raise BadInput(
            f"The report starts ({start}) after it ends ({end}).",
            hint="Give `from` on or before `to` (YYYY-MM-DD).",
        )
    if (end - start).days > MAX_DAYS:
        raise BadInput(
            f"The range {start} to {end} is longer than three years.",
            hint="Ask for at most three years at a time.",
        )
    return start, end


def operator_viewer(*, company_id: int) -> Viewer:
    """The CLI's view of a company: its operator counts like an admin (all logged mail)."""
    return Viewer(
        user_id=0,
        company_id=company_id,
        is_admin=True,
        email="",
        addresses=frozenset(),
        mailbox_ids=frozenset(),
    )


def activity_report(
    session: Session,
    *,
    viewer: Viewer,
    by: str,
    start: date | None = None,
    end: date | None = None,
    user_id: int | None = None,
) -> ActivityReport:
    """Logged mail sent and received per `by` (user, week, type, stage) in the range, as the
    viewer may count it (module docstring); the CLI passes `operator_viewer`. With
    `user_id`, only that user's mail (per user per week: `by="week"`)."""
    if by not in GROUPINGS:
        raise BadInput(f"Unknown grouping {by!r}.", hint=f"Use by={', by='.join(GROUPINGS)}.")
    start, end = report_range(start=start, end=end)
    partial = not viewer.is_admin and privacy_of(session, viewer.company_id).visibility == "strict"
    logged = _logged_messages(session, viewer=viewer, start=start, end=end)
    if user_id is not None:
        logged = logged.where(_users_mail(session, viewer=viewer, user_id=user_id))
    rows = _GROUPERS[by](session, viewer, logged, start, end)
    return ActivityReport(by=by, start=start, end=end, rows=rows, partial=partial)


def _logged_messages(session: Session, *, viewer: Viewer, start: date, end: date) -> Logged:
    """(id, direction, date) of the logged messages of the range the viewer may count."""
    seen: ColumnElement[bool] = (
        Message.company_id == viewer.company_id
        if viewer.is_admin
        else visible_messages_clause(session, viewer=viewer)
    )
    low = datetime.combine(start, time.min, tzinfo=UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    linked = select(MessageLink.message_id).where(MessageLink.company_id == viewer.company_id)
    return select(Message.id, Message.direction, Message.date_utc).where(
        and_(
            seen,
            Message.direction.in_(DIRECTIONS),
            Message.date_utc >= low,
            Message.date_utc < high,
            Message.id.in_(linked),
        )
    )


def _users_mail(session: Session, *, viewer: Viewer, user_id: int) -> ColumnElement[bool]:
    """SQL for "the message is this user's": copied from their mailboxes, or one of their
    addresses is a participant; NotFound for a user of another company."""
    user = session.get(User, user_id)
    if user is None or user.company_id != viewer.company_id:
        raise NotFound(f"No user {user_id}.", hint="Pick a user of your company.")
    theirs = viewer_for(session, user)
    took_part = Message.id.in_(
        select(MessageAddress.message_id).where(
            MessageAddress.company_id == viewer.company_id,
            MessageAddress.address.in_(sorted(theirs.addresses)),
        )
    )
    if not theirs.mailbox_ids:
        return took_part
    copied = Message.id.in_(
        select(MessageCopy.message_id).where(MessageCopy.mailbox_id.in_(sorted(theirs.mailbox_ids)))
    )
    return or_(copied, took_part)


def _counts(message_ids: Iterable[int], direction: dict[int, str]) -> dict[str, int]:
    tally = Counter(direction[m] for m in set(message_ids))
    sent, received = tally["outbound"], tally["inbound"]
    return {"sent": sent, "received": received, "total": sent + received}


def _directions(session: Session, logged: Logged) -> dict[int, str]:
    return {mid: direction for mid, direction, _day in session.execute(logged)}


def _by_user(
    session: Session, viewer: Viewer, logged: Logged, _start: date, _end: date
) -> list[dict[str, Any]]:
    direction = _directions(session, logged)
    users = list(
        session.scalars(
            select(User).where(User.company_id == viewer.company_id).order_by(User.email)
        )
    )
    box_owner: dict[int, int] = {
        box_id: user_id
        for box_id, user_id in session.execute(
            select(Mailbox.id, Mailbox.user_id).where(Mailbox.company_id == viewer.company_id)
        )
    }
    owners_of: dict[str, set[int]] = defaultdict(set)
    for user in users:
        owners_of[user.email].add(user.id)
    for box_id, address in session.execute(select(Mailbox.id, Mailbox.address)):
        if box_id in box_owner:
            owners_of[address].add(box_owner[box_id])
    for box_id, address in session.execute(
        select(MailboxAlias.mailbox_id, MailboxAlias.address).where(
            MailboxAlias.approved.is_(True), MailboxAlias.mailbox_id.in_(list(box_owner))
        )
    ):
        owners_of[address].add(box_owner[box_id])
    mine: dict[int, set[int]] = defaultdict(set)
    ids = select(logged.subquery().c.id)
    for message_id, box_id in session.execute(
        select(MessageCopy.message_id, MessageCopy.mailbox_id).where(
            MessageCopy.message_id.in_(ids)
        )
    ):
        if box_id in box_owner:
            mine[box_owner[box_id]].add(message_id)
    for message_id, address in session.execute(
        select(MessageAddress.message_id, MessageAddress.address).where(
            MessageAddress.message_id.in_(ids), MessageAddress.address.in_(sorted(owners_of))
        )
    ):
        for user_id in owners_of[address]:
            mine[user_id].add(message_id)
    return [
        {"user_id": u.id, "email": u.email, "name": u.name, **_counts(mine[u.id], direction)}
        for u in users
    ]


def week_of(day: date) -> date:
    """The Monday that starts `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def _by_week(
    session: Session, _viewer: Viewer, logged: Logged, start: date, end: date
) -> list[dict[str, Any]]:
    weeks: dict[date, dict[str, int]] = {}
    monday = week_of(start)
    while monday <= end:
        weeks[monday] = {"sent": 0, "received": 0, "total": 0}
        monday += timedelta(weeks=1)
    for _mid, direction, when in session.execute(logged):
        aware = as_utc(when)
        if aware is None:  # excluded by the range already
            continue
        row = weeks[week_of(aware.date())]
        row["sent" if direction == "outbound" else "received"] += 1
        row["total"] += 1
    return [{"week": monday.isoformat(), **counts} for monday, counts in weeks.items()]


def _by_type(
    session: Session, viewer: Viewer, logged: Logged, _start: date, _end: date
) -> list[dict[str, Any]]:
    direction = _directions(session, logged)
    per_type: dict[str, set[int]] = {t: set() for t in RECORD_TYPES}
    for message_id, record_type in session.execute(
        select(MessageLink.message_id, Record.type)
        .join(Record, Record.id == MessageLink.record_id)
        .where(
            MessageLink.company_id == viewer.company_id,
            MessageLink.message_id.in_(select(logged.subquery().c.id)),
        )
    ):
        per_type.setdefault(record_type, set()).add(message_id)
    return [{"type": t, **_counts(ids, direction)} for t, ids in per_type.items()]


def stage_of(fields: dict[str, Any] | None) -> str:
    """An opportunity's stage as the report groups it: `stage`, else `status`, else open."""
    values = fields or {}
    return str(values.get("stage") or values.get("status") or "open").strip() or "open"


def _by_stage(
    session: Session, viewer: Viewer, logged: Logged, _start: date, _end: date
) -> list[dict[str, Any]]:
    direction = _directions(session, logged)
    per_stage: dict[str, set[int]] = defaultdict(set)
    for message_id, fields in session.execute(
        select(MessageLink.message_id, Record.fields)
        .join(Record, Record.id == MessageLink.record_id)
        .where(
            MessageLink.company_id == viewer.company_id,
            Record.type == "opportunity",
            MessageLink.message_id.in_(select(logged.subquery().c.id)),
        )
    ):
        per_stage[stage_of(fields)].add(message_id)
    return [{"stage": s, **_counts(per_stage[s], direction)} for s in sorted(per_stage)]


_GROUPERS = {"user": _by_user, "week": _by_week, "type": _by_type, "stage": _by_stage}
