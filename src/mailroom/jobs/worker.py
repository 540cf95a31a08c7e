"""One `mailroom worker` process: a Procrastinate worker on Mailroom's queues.

Concurrency: `concurrency` jobs at once, each a synchronous job (the sync engine is
blocking I/O) in a thread of the event loop's executor, sized to match; the loop itself
keeps the heartbeat, LISTEN/NOTIFY and the periodic deferrer going while jobs block.

The tick: with the `chores` queue, the worker also serves the `tick` queue, in a slot
reserved for it beside the `concurrency` ones (tick_slot.py): stall recovery and the due
polls never wait for a sync to end.

IDLE: with the `sync` queue, the worker also runs its share of the IDLE watchers (one
selector thread for every watched connection, sync/idle.py; watch.py), whose pushes queue
syncs.

Shutdown (SIGTERM or SIGINT): `stopping` is set, so each running sync ends after the
batch it is committing and queues its mailbox again (hand-back, tasks.py); Procrastinate
then waits for the running jobs (at most `grace` seconds, then aborts them) and
unregisters the worker; it is told to stop once the reserved slot has ended its tick (a
job of an unregistered worker would look stalled). SIGKILL: nothing runs; the heartbeat
stops and the tick of another worker retries its jobs (recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from procrastinate.worker import Worker

from mailroom.app import App
from mailroom.jobs.background import BackgroundTask
from mailroom.jobs.chores import Chore
from mailroom.jobs.queue import CHORES_QUEUE, QUEUES, SYNC_QUEUE, TICK_QUEUE, make_queue
from mailroom.jobs.tick_slot import TickSlot
from mailroom.jobs.timing import JobTimings, load_timings
from mailroom.jobs.watch import Watch

log = logging.getLogger(__name__)


def run_worker(
    app: App,
    *,
    concurrency: int = 4,
    queues: Sequence[str] | None = None,
    timings: JobTimings | None = None,
    grace: float = 120.0,
    name: str | None = None,
    watch: bool = True,
    chores: Sequence[Chore] | None = None,
    background: Sequence[BackgroundTask] = (),
) -> None:
    """Run a worker until SIGTERM/SIGINT (see the module docstring); with `watch` (and
    the sync queue), also its share of the IDLE watchers (watch.py)."""
    asyncio.run(
        _main(
            app,
            concurrency=concurrency,
            queues=list(queues) if queues else list(QUEUES),
            timings=timings or load_timings(),
            grace=grace,
            name=name,
            watch=watch,
            chores=chores,
            background=background,
        )
    )


async def _main(
    app: App,
    *,
    concurrency: int,
    queues: list[str],
    timings: JobTimings,
    grace: float,
    name: str | None,
    watch: bool,
    chores: Sequence[Chore] | None,
    background: Sequence[BackgroundTask],
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency + 4, thread_name_prefix="mailroom-job")
    )
    stopping = threading.Event()
    queue = make_queue(
        app,
        timings=timings,
        stopping=stopping,
        worker=True,
        pool_size=concurrency + 4,
        chores=chores,
        background=background,
    )
    async with queue.open_async():
        slot = TickSlot(app, queue, timings) if CHORES_QUEUE in queues else None
        worker = Worker(
            queue,
            queues=[q for q in queues if q != TICK_QUEUE],  # never in the job slots
            name=name,
            concurrency=concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=timings.heartbeat,
            stalled_worker_timeout=timings.stalled_after,
            shutdown_graceful_timeout=grace,
            fetch_job_polling_interval=float(timings.tick),
            delete_jobs="successful",
        )

        ticking = asyncio.create_task(slot.run(worker)) if slot is not None else None

        async def stop_after_the_tick() -> None:
            if slot is not None and ticking is not None:
                slot.stop()
                await ticking
            worker.stop()  # type: ignore[no-untyped-call]

        stopper: asyncio.Task[None] | None = None

        def stop() -> None:
            nonlocal stopper
            log.info("stopping: running syncs end after their batch and are queued again")
            stopping.set()
            if stopper is None:
                stopper = asyncio.create_task(stop_after_the_tick())

        stopped = asyncio.Event()
        watching = None
        if watch and SYNC_QUEUE in queues:
            watching = asyncio.create_task(Watch(app, queue, timings).run(worker, stopped))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await worker.run()  # type: ignore[no-untyped-call]
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            stopped.set()
            if slot is not None and ticking is not None:
                slot.stop()  # the worker ended on its own (a failed side task)
                await ticking
            if watching is not None:
                await watching
