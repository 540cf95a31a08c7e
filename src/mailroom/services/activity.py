"""Use case: a record's activity — mail, notes and tasks in one stream, newest first,
filterable (all / mail / notes / tasks).

Mail is paged as the timeline pages it (crm.access.visible_timeline_page: what the viewer
may see, redacted to their level); each page of mail covers a span of time, and the notes
and tasks made in that span are merged into it, so "Load more" walks one stream without
repeating or skipping anything. Notes and tasks alone are shown whole (a record has few).
A note or task made from an email links to it only when the viewer may see that email.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.crm.timeline import TimelineEntry
from mailroom.db.models import Message, Record
from mailroom.db.times import as_utc
from mailroom.errors import BadInput
from mailroom.services.notes import NoteView, record_notes
from mailroom.services.tasks import TaskView, record_tasks

Show = Literal["all", "mail", "notes", "tasks"]
SHOWS: tuple[Show, ...] = ("all", "mail", "notes", "tasks")
PAGE = 50


@dataclass(frozen=True, slots=True)
class ActivityItem:
    """One item of the stream: `kind` mail, note or task, and when it happened."""

    kind: str
    when: datetime | None
    mail: TimelineEntry | None = None
    note: NoteView | None = None
    task: TaskView | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """A page of the stream, the viewer's level for each email, and the next mail cursor."""

    items: list[ActivityItem]
    levels: dict[int, str] = field(default_factory=dict)
    visible_mail: frozenset[int] = frozenset()
    next: int | None = None


def record_activity(
    *,
    session: Session,
    viewer: Viewer,
    record_type: str,
    record_id: int,
    show: str = "all",
    after: int | None = None,
) -> Activity:
    """One page of the record's activity as `viewer` may see it; `after` is the last mail
    of the previous page."""
    if show not in SHOWS:
        raise BadInput(f"show: {show!r} is not a filter.", hint="Use all, mail, notes or tasks.")
    record = access.get_record(session, viewer=viewer, record_type=record_type, record_id=record_id)
    if show == "notes":
        notes = record_notes(session=session, viewer=viewer, record=record)
        items = [ActivityItem("note", n.created_at, note=n) for n in notes]
        return _with_links(session, viewer, Activity(items))
    if show == "tasks":
        tasks = record_tasks(session=session, viewer=viewer, record=record)
        return _with_links(session, viewer, Activity([_task_item(t) for t in tasks]))
    return _mail_page(session, viewer, record, show=show, after=after)


def _mail_page(
    session: Session, viewer: Viewer, record: Record, *, show: str, after: int | None
) -> Activity:
    page = access.visible_timeline_page(
        session, viewer=viewer, record=record, after=after, limit=PAGE
    )
    items = [ActivityItem("mail", _parse(e.date), mail=e) for e in page.entries]
    if show == "all":
        upper = _mail_date(session, after) if after is not None else None
        lower = items[-1].when if page.next is not None and items else None
        extra: list[ActivityItem] = [
            ActivityItem("note", n.created_at, note=n)
            for n in record_notes(session=session, viewer=viewer, record=record)
        ]
        extra += [
            _task_item(t) for t in record_tasks(session=session, viewer=viewer, record=record)
        ]
        items += [i for i in extra if _within(i.when, lower, upper, after is not None)]
        items.sort(key=_order, reverse=True)
    return _with_links(session, viewer, Activity(items, levels=page.levels, next=page.next))


def _task_item(task: TaskView) -> ActivityItem:
    return ActivityItem("task", task.created_at, task=task)


def _within(
    when: datetime | None, lower: datetime | None, upper: datetime | None, paged: bool
) -> bool:
    """In the span (lower, upper] a page of mail covers (open ends: None). A page after
    undated mail holds only undated mail, so no note or task: they were on earlier pages."""
    if when is None or (paged and upper is None):
        return False
    if lower is not None and when <= lower:
        return False
    return not (paged and upper is not None and when > upper)


def _order(item: ActivityItem) -> tuple[int, float]:
    return (0, 0.0) if item.when is None else (1, item.when.timestamp())


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _mail_date(session: Session, message_id: int) -> datetime | None:
    return as_utc(session.scalar(select(Message.date_utc).where(Message.id == message_id)))


def _with_links(session: Session, viewer: Viewer, activity: Activity) -> Activity:
    """The activity with the set of emails (named by notes and tasks) the viewer may open."""
    named: set[int] = set()
    for item in activity.items:
        source: Any = item.note or item.task
        if source is not None and source.message_id:
            named.add(source.message_id)
    visible: frozenset[int] = frozenset()
    if named:
        visible = frozenset(
            session.scalars(
                select(Message.id).where(
                    Message.id.in_(named), access.visible_messages(session, viewer)
                )
            )
        )
    return Activity(activity.items, activity.levels, visible, activity.next)
