"""Jobs of dead workers: found by their worker's heartbeat, retried on a live worker.

Procrastinate does not retry the jobs of a killed worker by itself: a job stays `doing`
(and keeps its mailbox's lock) until someone retries it. The tick (tasks.py) calls
`recover_stalled` every few seconds: a job whose worker has sent no heartbeat for
`stalled_after` seconds goes back to `todo` (same job, same lock), and another worker
takes it. For a sync job, the dead worker's claim on the mailbox is released first —
only if it is still that job's claim (`…:job<ID>`), so a live sync is never touched —
and the new sync resumes from the committed cursor (a batch commits with its cursor).

Never two syncs of one mailbox: the lock stays held by the stalled job until it is
retried, so no other sync job of that mailbox starts meanwhile; and a worker that only
looked dead (frozen, cut off) loses its claim, so its next batch commit fails
(`ClaimLost`, checked under the row lock) and it writes nothing more.
"""

from __future__ import annotations

import asyncio
import logging

import procrastinate
from procrastinate import exceptions
from procrastinate.jobs import Job, Status

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.jobs.queue import SYNC_TASK
from mailroom.sync.claims import lock_mailbox

log = logging.getLogger(__name__)


def job_owner_suffix(job_id: int) -> str:
    """The end of the claim (`Mailbox.sync_owner`) a sync job takes: `:job<ID>`."""
    return f":job{job_id}"


def release_claim(app: App, *, mailbox_id: int, job_id: int) -> bool:
    """Clear the mailbox's claim if the stalled job `job_id` holds it; whether it did."""
    with transaction(app.sessions) as session:
        mailbox = lock_mailbox(session, mailbox_id)
        if mailbox is None or not (mailbox.sync_owner or "").endswith(job_owner_suffix(job_id)):
            return False
        mailbox.sync_owner = None  # stale now: the retried job claims it at once
        return True


async def recover_stalled(queue: procrastinate.App, app: App, *, stalled_after: float) -> int:
    """Retry every job of a worker silent for `stalled_after` seconds; how many."""
    manager = queue.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    for job in stalled:
        await _recover(queue, app, job)
    await manager.prune_stalled_workers(stalled_after)
    return len(stalled)


async def _recover(queue: procrastinate.App, app: App, job: Job) -> None:
    assert job.id is not None
    if job.task_name == SYNC_TASK:
        mailbox_id = int(job.task_kwargs["mailbox_id"])  # type: ignore[arg-type]
        released = await asyncio.to_thread(release_claim, app, mailbox_id=mailbox_id, job_id=job.id)
        log.warning(
            "job %s (sync of mailbox %s) stalled: its worker is gone%s; retrying it",
            job.id,
            mailbox_id,
            ", claim released" if released else "",
        )
    else:
        log.warning("job %s (%s) stalled: its worker is gone; retrying it", job.id, job.task_name)
    try:
        await queue.job_manager.retry_job(job)
    except (exceptions.AlreadyEnqueued, exceptions.UniqueViolation):
        # another job of that mailbox waits already (e.g. a "sync now"): it does the work
        await queue.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    except exceptions.ConnectorException as exc:
        # Two ticks may recover at once (the tick holds no lock, see jobs.tasks): the other
        # one retried it first and the job is no longer `doing`.
        log.info("job %s was already retried: %s", job.id, exc)
