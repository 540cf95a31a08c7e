"""The slot reserved for the tick in every worker process, beside its `concurrency` slots.

The tick (tasks.py: stall recovery, then the due polls) is a Procrastinate periodic job,
deferred once per period across all workers, on a queue of its own (`tick`). A
Procrastinate worker runs a job only in a free slot, so when every slot synced the tick
waited for a sync to end, and with it the recovery of a dead worker's mailboxes (a first
sync of thousands of messages holds a slot for minutes). The worker's Procrastinate
`Worker` therefore does not serve the `tick` queue; this loop does: it fetches tick jobs
as that worker (its id, so a tick of a killed worker is recovered like any other job of
it), runs them one at a time on the event loop, and acknowledges them as the `Worker`
does (deleted when they succeed), logging the same lines.

One slot is enough: the tick is short, and holds no Procrastinate lock (a killed
worker's tick blocks nothing, tasks.py). Decision 0034.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import procrastinate
from procrastinate.jobs import Job, Status
from procrastinate.worker import Worker

from mailroom.app import App
from mailroom.jobs.queue import TICK_QUEUE
from mailroom.jobs.tasks import run_tick
from mailroom.jobs.timing import JobTimings

# Procrastinate's own logger, so the tick's lines read (and are found) as every job's do.
log = logging.getLogger("procrastinate.worker")

POLL = 1.0  # seconds between two looks for a waiting tick when none was found


class TickSlot:
    """One worker process's reserved slot: runs the tick jobs, one at a time."""

    def __init__(self, app: App, queue: procrastinate.App, timings: JobTimings) -> None:
        self.app = app
        self.queue = queue
        self.timings = timings
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        """End after the tick it runs, if any (`run` then returns)."""
        self.stopped.set()

    async def run(self, worker: Worker) -> None:
        """Fetch and run tick jobs as `worker` until `stop`; a failed fetch is logged and
        tried again (a database hiccup must not end recovery)."""
        while not self.stopped.is_set():
            job = None
            if worker.worker_id is not None:
                try:
                    job = await self.queue.job_manager.fetch_job(
                        queues=[TICK_QUEUE], worker_id=worker.worker_id
                    )
                except Exception:
                    log.exception("tick slot: fetching the next tick failed")
            if job is not None:
                try:
                    await self._process(job)
                except Exception:  # acknowledging failed: the job stays `doing`, and
                    # recovery retries it once this worker is gone; the slot goes on
                    log.exception("tick slot: acknowledging %s failed", job.call_string)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), timeout=POLL)

    async def _process(self, job: Job) -> None:
        start = time.monotonic()
        log.info("Starting job %s", job.call_string)
        try:
            outcome = await run_tick(self.queue, self.app, self.timings)
        except Exception:
            log.exception(
                "Job %s ended with status: Error, lasted %.3f s",
                job.call_string,
                time.monotonic() - start,
            )
            await self.queue.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            return
        await self.queue.job_manager.finish_job(job, status=Status.SUCCEEDED, delete_job=True)
        log.info(
            "Job %s ended with status: Success, lasted %.3f s - Result: %s",
            job.call_string,
            time.monotonic() - start,
            outcome,
        )
