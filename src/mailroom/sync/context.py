"""What one mailbox's sync carries from step to step: its context, stages and reports.

`SyncContext` is shared by every folder of one sync (never between syncs); a
`FolderReport` counts what one folder's sync did and is kept when an error stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from mailroom.app import App
from mailroom.ingest.counts import IngestCounts

if TYPE_CHECKING:  # ingest (and matching under it) is imported when there is mail to store
    from mailroom.db.statistics import GrowthAnalyzer
    from mailroom.ingest.batch import BatchResult

MAX_BATCH_BYTES = 16 << 20


class FolderStage(StrEnum):
    """Where a folder's sync stands (FolderState.stage)."""

    NEW = "new"  # never opened: no cursor yet
    BACKFILL = "backfill"  # cursors set; older mail still being fetched, newest first
    CATCHUP = "catchup"  # fetching new mail above last_uid (forward-only sources)
    READY = "ready"  # everything up to the last STATUS is stored


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A mailbox's progress after a committed batch (done/total messages and bytes)."""

    mailbox_id: int
    folder: str
    done: int
    total: int
    done_bytes: int
    total_bytes: int


@dataclass(slots=True, kw_only=True)
class FolderReport(IngestCounts):
    """What one folder's sync did."""

    name: str
    skipped: bool = False
    fetched: int = 0
    gone: int = 0
    flags_changed: int = 0
    uidvalidity_changed: bool = False
    # listed messages not fetched: (UID, state after this attempt, why), sync/quarantine.py
    unfetched: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def retrying(self) -> list[tuple[int, str]]:
        """(UID, why) of the messages left to fetch again at the next sync."""
        return [(uid, why) for uid, state, why in self.unfetched if state == "retrying"]

    def add(self, result: BatchResult, fetched: int) -> None:
        """Count a stored batch and the messages fetched for it."""
        self.fetched += fetched
        self.add_counts(result)


@dataclass(slots=True)
class SyncContext:
    """What every step of one mailbox's sync needs."""

    app: App
    mailbox_id: int
    company_id: int
    owner: str
    since: date | None = None
    batch_size: int = 200
    max_batch_bytes: int = MAX_BATCH_BYTES
    # Messages per batch of a fetch that goes to the fetch workers (sync/fetch_worker.py);
    # None: `batch_size`. Their bytes wait on disk, not in memory, and `max_batch_bytes`
    # still bounds each FETCH answer, so larger batches there cost no memory and save
    # each batch's fixed costs (sync/engine.py, WORKER_BATCH).
    worker_batch_size: int | None = None
    progress: Callable[[ProgressEvent], None] | None = None
    stop: threading.Event | None = None
    beat: Callable[[], None] = field(default=lambda: None)
    # ANALYZEs the tables this sync grows, between batches (db/statistics.py; PostgreSQL)
    statistics: GrowthAnalyzer | None = None

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()
