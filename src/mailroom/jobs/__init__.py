"""Background jobs of the PostgreSQL mode: `mailroom worker` processes run them through
Procrastinate (docs/decisions/0020-procrastinate-workers.md).

Placed between `services` and the workflows (`sync | outbox | dropbox`): a job is thin —
decode its arguments, call the same function the in-process `mailroom serve` calls
(`sync.engine.sync_mailbox`, `sync.scheduler.mailboxes_due`, the serve's `Periodic`
chores) — and `services` defers jobs (sync now) and runs or lists the workers. Nothing
here is imported on SQLite: the embedded mode never loads Procrastinate.

    timing.py    intervals (heartbeat, stall bound, tick, poll) from the environment
    queue.py     the Procrastinate app, its queues, locks and priorities; defer a sync
    tasks.py     the tasks: sync a mailbox; the periodic tick (what is due, stalled jobs);
                 the chores
    chores.py    the serve's periodic chores, run once per period across all workers
    recovery.py  stalled jobs of dead workers: release their claim, retry them
    tick_slot.py the slot reserved for the tick in each worker, beside its job slots
    worker.py    one worker process: signals, graceful hand-back, heartbeat
    status.py    live workers, their jobs, queue depth (for `mailroom workers`, the API)
"""
