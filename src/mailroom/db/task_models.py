"""Notes and tasks on records (issue 13, item 4).

Invariants:
- a note or task belongs to exactly one record of its company (`company_id` equals the
  record's; both cascade), so deleting a record removes them and merging moves them
  (services.notes.move_notes_and_tasks);
- `message_id` names the email it was made from, if any; deleting that message keeps the
  note or task (SET NULL);
- a task's assignee is a user of the same company (checked by services.tasks); deleting
  the user leaves the task unassigned rather than losing it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow


class Note(Base):
    """A free-text note on a record, by a user, optionally about one email."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_record_created", "record_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Task(Base):
    """Something to do about a record by a due date: title, assignee, done flag."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_done_due", "assignee_id", "done", "due"),
        Index("ix_tasks_record", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    due: Mapped[date] = mapped_column(Date)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
