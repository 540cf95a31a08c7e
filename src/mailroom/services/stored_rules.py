"""Run a rule on stored mail: a preview count first, then the run, idempotent.

For `mailroom rules run NAME [--dry-run]`, `GET|POST /api/v1/rules/{name}/stored` and the
"Run on stored mail" button of Admin → Rules. A rule saved today otherwise acts only on
mail that arrives from now on; this applies it to the mail already stored, with the same
engine as ingestion (`matching.rules` checks the conditions on the stored raw message,
`ingest.actions.apply_actions` runs the action, writing its `RuleOutcome`).

Which stored messages a run changes (the preview counts exactly these, and the run changes
exactly these — decision record 0023):
- `ignore`: messages its conditions hold for that are logged now (no `MessageSkip`): each
  gets the skip `rule:NAME` (as at ingestion) and loses its automatic links; links made by
  hand (`manual`) stay, as everywhere a person's decision outlives automation;
- every other action (create, extract, assign-owner, tag): logged messages its conditions
  hold for that this rule has never acted on (no `RuleOutcome` of the rule) and, for the
  creating actions, that are not automatic mail (which never creates records). The action
  writes its outcome, so a second run finds nothing to do: **a second run changes nothing**.

Messages are scanned in id order, `BATCH` at a time, each batch in its own short
transaction. Up to `INLINE_LIMIT` stored messages run in the request; more run in the
background (the CLI always runs inline), whose progress (`run_status`) the page polls:
on SQLite in a daemon thread of `mailroom serve` (one run per company and rule at a
time per process); on PostgreSQL as a job of the workers (`rule_job`, one per company
and rule at a time across all of them), its progress a `background_runs` row committed
with each batch, so a job retried after its worker died goes on after the last batch
committed with exact counts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm.access import Viewer, require_admin
from mailroom.db.engine import transaction
from mailroom.db.matching_models import MatchRule, MessageSkip, RuleOutcome
from mailroom.db.models import Company, Mailbox, Message, MessageCopy, MessageLink
from mailroom.errors import Conflict, NotFound
from mailroom.ingest.actions import apply_actions
from mailroom.mail.blobs import BlobStore
from mailroom.matching.classify import automation_reason
from mailroom.matching.directory import load_directory
from mailroom.matching.manual import MANUAL
from mailroom.matching.policy import load_policy
from mailroom.matching.rulebook import get_rule, stored_parse
from mailroom.matching.rules import Rule, make_rule
from mailroom.matching.view import MailView
from mailroom.services.background_runs import (
    RunKey,
    active,
    finish_run,
    queue_run,
    record_progress,
    shown,
    start_run,
)

log = logging.getLogger(__name__)
BATCH = 200
INLINE_LIMIT = 2_000
_jobs: dict[tuple[int, str], RunStatus] = {}
_lock = threading.Lock()


@dataclass
class RunStatus:
    """A run's progress: stored messages scanned of `total`, and messages changed."""

    rule: str
    action: str
    total: int
    scanned: int = 0
    affected: int = 0
    state: str = "running"  # running | done | failed
    dry_run: bool = False
    background: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The status as the CLI's `--json`, the API and the page show it."""
        return asdict(self)


def _company(session: Session, *, company_id: int, viewer: Viewer | None) -> Company:
    if viewer is not None:
        require_admin(viewer)
        company_id = viewer.company_id
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound(f"No company {company_id}.")
    return company


def _rule(session: Session, company: Company, name: str) -> Rule:
    row = get_rule(session, company=company, name=name)
    return make_rule(name=row.name, action=row.action, conditions=row.conditions, params=row.params)


def _changes(
    session: Session, rule: Rule, message: Message, blobs: BlobStore | None
) -> MailView | None:
    """The message as the rule sees it, if running the rule on it would change something."""
    skipped = session.scalar(select(MessageSkip.id).where(MessageSkip.message_id == message.id))
    if skipped is not None:
        return None
    if rule.action != "ignore":
        done = session.scalar(
            select(RuleOutcome.id).where(
                RuleOutcome.message_id == message.id, RuleOutcome.rule == rule.name
            )
        )
        if done is not None:
            return None
    parsed = stored_parse(message, blobs)
    mailbox = session.execute(
        select(Mailbox.id, Mailbox.address)
        .join(MessageCopy, MessageCopy.mailbox_id == Mailbox.id)
        .where(MessageCopy.message_id == message.id)
        .order_by(MessageCopy.id)
        .limit(1)
    ).first()
    view = MailView(
        parsed=parsed,
        direction=message.direction,
        mailbox_id=mailbox[0] if mailbox else None,
        mailbox_address=mailbox[1] if mailbox else None,
        automated=automation_reason(parsed),
    )
    if not rule.check(view) or (rule.creates and view.automated):
        return None
    return view


def _batches(session: Session, company_id: int) -> Iterator[list[Message]]:
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(Message)
                .where(Message.company_id == company_id, Message.id > after)
                .order_by(Message.id)
                .limit(BATCH)
            )
        )
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _apply(session: Session, rule: Rule, message: Message, view: MailView) -> None:
    """What ingestion would have done with this rule: skip and unlink, or the action."""
    if rule.action == "ignore":
        session.add(
            MessageSkip(
                message_id=message.id,
                company_id=message.company_id,
                skipped_by=f"rule:{rule.name}",
                detail=(rule.description or "ignore") + " (run on stored mail)",
            )
        )
        session.execute(
            delete(MessageLink).where(
                MessageLink.message_id == message.id, MessageLink.reason != MANUAL
            )
        )
        session.flush()
        return
    policy = load_policy(session, company_id=message.company_id, mailbox_id=view.mailbox_id)
    apply_actions(
        session,
        message=message,
        mail=view,
        rules=[rule],
        policy=policy,
        directory=load_directory(session, message.company_id),
    )


def stored_count(session: Session, *, company_id: int) -> int:
    """How many messages the company has stored (what a run scans)."""
    return (
        session.scalar(
            select(func.count()).select_from(Message).where(Message.company_id == company_id)
        )
        or 0
    )


def preview_rule_on_stored(
    session: Session,
    *,
    name: str,
    blobs: BlobStore | None,
    company_id: int = 0,
    viewer: Viewer | None = None,
) -> RunStatus:
    """How many stored messages running rule NAME would change (changes nothing); an admin
    `viewer` for the page and API, or `company_id` for the CLI."""
    company = _company(session, company_id=company_id, viewer=viewer)
    rule = _rule(session, company, name)
    status = RunStatus(
        rule=rule.name,
        action=rule.action,
        total=stored_count(session, company_id=company.id),
        dry_run=True,
    )
    for batch in _batches(session, company.id):
        status.scanned += len(batch)
        status.affected += sum(1 for m in batch if _changes(session, rule, m, blobs) is not None)
    status.state = "done"
    session.rollback()  # a read: nothing to keep
    return status


def _run_batch(
    session: Session,
    *,
    company_id: int,
    rule: Rule,
    after: int,
    blobs: BlobStore | None,
    limit: int = BATCH,
) -> tuple[int, int, int]:
    """Run the rule on the next `limit` messages after id `after`, in the caller's
    transaction: (messages scanned, the last one's id, messages changed)."""
    rows = list(
        session.scalars(
            select(Message)
            .where(Message.company_id == company_id, Message.id > after)
            .order_by(Message.id)
            .limit(limit)
        )
    )
    changed = 0
    for message in rows:
        view = _changes(session, rule, message, blobs)
        if view is not None:
            _apply(session, rule, message, view)
            changed += 1
    return len(rows), (rows[-1].id if rows else after), changed


def _run(app: App, company_id: int, rule: Rule, status: RunStatus) -> None:
    after = 0
    while True:
        with transaction(app.sessions) as session:
            scanned, after, changed = _run_batch(
                session, company_id=company_id, rule=rule, after=after, blobs=app.blobs
            )
        if not scanned:
            break
        status.affected += changed
        status.scanned += scanned
    status.state = "done"


def _background(app: App, company_id: int, rule: Rule, status: RunStatus) -> None:
    try:
        _run(app, company_id, rule, status)
    except Exception as exc:  # shown on the page; the batches done so far are kept
        log.exception("running rule %s on stored mail failed", rule.name)
        status.state, status.error = "failed", str(exc)[:500]


def run_rule_on_stored(
    app: App,
    *,
    name: str,
    company_id: int = 0,
    viewer: Viewer | None = None,
    background: bool = False,
) -> RunStatus:
    """Run rule NAME on the company's stored mail; with `background` (the page and API) a
    company with more than INLINE_LIMIT stored messages runs in a thread and the status
    answered at once says `running` (poll `run_status`)."""
    with app.sessions() as session:
        company = _company(session, company_id=company_id, viewer=viewer)
        rule = _rule(session, company, name)
        company_id = company.id
        total = stored_count(session, company_id=company_id)
        session.rollback()
    if background and total > INLINE_LIMIT and not app.settings.is_sqlite:
        return _queue_rule(app, company_id=company_id, rule=rule, total=total)
    key = (company_id, rule.name)
    with _lock:
        current = _jobs.get(key)
        if current is not None and current.state == "running":
            raise Conflict(
                f"Rule {rule.name} is already running on stored mail "
                f"({current.scanned} of {current.total} messages).",
                hint="Wait for it to finish; the rules page shows its progress.",
            )
        status = RunStatus(rule=rule.name, action=rule.action, total=total)
        _jobs[key] = status
    if background and total > INLINE_LIMIT:
        status.background = True
        threading.Thread(
            target=_background,
            args=(app, company_id, rule, status),
            name=f"mailroom-rule-{rule.name}",
            daemon=True,
        ).start()
        return status
    try:
        _run(app, company_id, rule, status)
    except Exception:
        status.state = "failed"
        raise
    return status


RULE_JOB = "rule_on_stored"


def rule_run(company_id: int, name: str) -> RunKey:
    """The background run of rule NAME on the company's stored mail (PostgreSQL)."""
    return RunKey("rule", f"{company_id}:{name}")


def _busy(name: str, scanned: int, total: int) -> Conflict:
    return Conflict(
        f"Rule {name} is already running on stored mail ({scanned} of {total} messages).",
        hint="Wait for it to finish; the rules page shows its progress.",
    )


def _queue_rule(app: App, *, company_id: int, rule: Rule, total: int) -> RunStatus:
    """PostgreSQL: queue the run for the workers; `Conflict` if one waits or runs."""
    from mailroom.jobs.background import defer_background

    run = rule_run(company_id, rule.name)
    with transaction(app.sessions) as session:
        current = active(session, run)
        if current is not None:
            raise _busy(rule.name, current.done, current.total)
        queue_run(session, run, company_id=company_id, total=total)
    if not defer_background(
        app, name=RULE_JOB, lock=run.lock, company_id=company_id, rule=rule.name, batch=BATCH
    ):
        raise _busy(rule.name, 0, total)
    return RunStatus(rule=rule.name, action=rule.action, total=total, background=True)


def rule_job(
    app: App,
    *,
    stop: threading.Event,
    resume: bool,
    company_id: int,
    rule: str,
    batch: int = BATCH,
) -> str:
    """The workers' job running rule `rule` on the company's stored mail: each batch
    committed with the run's progress (the last message id, scanned and changed counts),
    so `resume` goes on exactly after the last batch committed. On `stop` it queues
    itself again after its batch."""
    from mailroom.jobs.background import defer_background

    run = rule_run(company_id, rule)
    try:
        with transaction(app.sessions) as session:
            row = start_run(session, run, company_id=company_id, resume=resume)
            company = _company(session, company_id=company_id, viewer=None)
            the_rule = _rule(session, company, rule)
            row.total = stored_count(session, company_id=company_id)
            after, scanned, affected = row.after, row.done, row.affected
        while True:
            if stop.is_set():
                defer_background(
                    app,
                    name=RULE_JOB,
                    lock=run.lock,
                    company_id=company_id,
                    rule=rule,
                    batch=batch,
                    resume=True,
                )
                return f"rule {rule}: {scanned} scanned, handed back"
            with transaction(app.sessions) as session:
                count, after, changed = _run_batch(
                    session,
                    company_id=company_id,
                    rule=the_rule,
                    after=after,
                    blobs=app.blobs,
                    limit=batch,
                )
                scanned, affected = scanned + count, affected + changed
                record_progress(session, run, after=after, done=scanned, affected=affected)
            if not count:
                break
    except Exception as exc:  # shown on the page; the batches done so far are kept
        log.exception("running rule %s on stored mail failed", rule)
        with transaction(app.sessions) as session:
            finish_run(session, run, state="failed", outcome=str(exc)[:500])
        return f"rule {rule}: failed"
    with transaction(app.sessions) as session:
        finish_run(session, run, state="done", outcome=None)
    return f"rule {rule}: {scanned} scanned, {affected} changed"


def run_status(
    *, name: str, company_id: int = 0, viewer: Viewer | None = None, app: App | None = None
) -> RunStatus | None:
    """The last run of rule NAME on stored mail (in this process; with a PostgreSQL
    `app`, the workers' last run when there is one), if any."""
    if viewer is not None:
        require_admin(viewer)
        company_id = viewer.company_id
    if app is not None and not app.settings.is_sqlite:
        with app.sessions() as session:
            row = shown(session, rule_run(company_id, name))
            if row is not None:
                rule = session.scalar(
                    select(MatchRule.action).where(
                        MatchRule.company_id == company_id, MatchRule.name == name
                    )
                )
                return RunStatus(
                    rule=name,
                    action=rule or "",
                    total=row.total,
                    scanned=row.done,
                    affected=row.affected,
                    state="running" if row.state == "queued" else row.state,
                    background=True,
                    error=row.outcome if row.state == "failed" else None,
                )
    with _lock:
        return _jobs.get((company_id, name))
