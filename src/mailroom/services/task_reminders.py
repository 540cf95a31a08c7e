"""Use case: the daily reminder mail of due tasks, one per assignee per day.

`send_task_reminders` finds every open task due today or earlier, groups them by assignee,
and queues one notice each through `outbox.notices.send_notice` under the key
`tasks:{user_id}:{date}`, so an assignee gets at most one reminder a day however often it
runs or however many processes run it. Without a notice mailbox nothing is queued (the
tasks are on "My tasks"). `TaskReminders` runs it from `mailroom serve`'s periodic loop.
Only the database is touched here (the outbox worker sends later): no transaction is open
during network I/O.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Record, User
from mailroom.db.task_models import Task
from mailroom.outbox.notices import NoticeOutcome, notice_mailbox, send_notice
from mailroom.periodic import Periodic

log = logging.getLogger(__name__)
MAX_LISTED = 50


def reminder_key(user_id: int, day: date) -> str:
    """The notice key of one assignee's reminder on one day."""
    return f"tasks:{user_id}:{day.isoformat()}"


def due_by_assignee(session: Session, *, company_id: int, day: date) -> dict[int, list[Task]]:
    """Open tasks of the company due on `day` or earlier, by assignee (unassigned left out)."""
    found: dict[int, list[Task]] = {}
    for task in session.scalars(
        select(Task)
        .where(
            Task.company_id == company_id,
            Task.done.is_(False),
            Task.due <= day,
            Task.assignee_id.is_not(None),
        )
        .order_by(Task.due, Task.id)
    ):
        assert task.assignee_id is not None
        found.setdefault(task.assignee_id, []).append(task)
    return found


def reminder_text(session: Session, *, tasks: list[Task], day: date, public_url: str) -> str:
    """The reminder's plain text: each task with its record, due date and a link."""
    ids = {t.record_id for t in tasks}
    names = {
        k: v for k, v in session.execute(select(Record.id, Record.name).where(Record.id.in_(ids)))
    }
    base = public_url.rstrip("/")
    lines = [f"Tasks due by {day.isoformat()}:", ""]
    for task in tasks[:MAX_LISTED]:
        late = " (overdue)" if task.due < day else ""
        name = names.get(task.record_id) or "a record"
        lines.append(f"- {task.title} — {name}, due {task.due}{late}")
    if len(tasks) > MAX_LISTED:
        lines.append(f"… and {len(tasks) - MAX_LISTED} more.")
    lines += ["", f"Open your tasks: {base}/tasks", ""]
    return "\n".join(lines)


def remind_company(
    session: Session, *, company_id: int, day: date, public_url: str
) -> dict[int, NoticeOutcome]:
    """Queue today's reminder for each assignee of the company with tasks due; user id →
    what send_notice did. Runs in the caller's transaction."""
    if notice_mailbox(session, company_id=company_id) is None:
        return {}
    done: dict[int, NoticeOutcome] = {}
    for user_id, tasks in due_by_assignee(session, company_id=company_id, day=day).items():
        user = session.get(User, user_id)
        if user is None or user.company_id != company_id:
            continue
        count = len(tasks)
        done[user_id] = send_notice(
            session,
            company_id=company_id,
            key=reminder_key(user_id, day),
            to=[user.email],
            subject=f"{count} task{'s' if count != 1 else ''} due",
            text=reminder_text(session, tasks=tasks, day=day, public_url=public_url),
        )
    return done


def send_task_reminders(app: App, *, day: date | None = None) -> dict[int, NoticeOutcome]:
    """Every company's reminders for `day` (today, UTC), one short transaction per company;
    user id → outcome."""
    day = day or datetime.now(UTC).date()
    with app.sessions() as session:
        companies = list(session.scalars(select(Task.company_id).distinct()))
    outcomes: dict[int, NoticeOutcome] = {}
    for company_id in companies:
        with transaction(app.sessions) as session:
            outcomes |= remind_company(
                session, company_id=company_id, day=day, public_url=app.settings.public_url
            )
    return outcomes


class TaskReminders(Periodic):
    """Runs `send_task_reminders` every `interval` seconds in a daemon thread of `serve`
    (hourly: the key makes the first run of each day the one that mails)."""

    thread_name = "mailroom-task-reminders"
    failure = "task reminders failed"
    stop_timeout = 10.0
    log = log

    def __init__(self, app: App, *, interval: float = 3600.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Queue the day's reminders that are not queued yet."""
        queued = [u for u, o in send_task_reminders(self.app).items() if o is NoticeOutcome.QUEUED]
        if queued:
            log.info("task reminders queued for %d users", len(queued))
