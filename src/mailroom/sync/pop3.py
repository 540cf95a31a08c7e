"""POP3 sync: diff the UIDLs against the copies already stored, fetch what is new.

POP3 (RFC 1939) has no folders, flags or dates to search: the cost of a resync is one
UIDL + LIST exchange and a set difference (invariant "cost grows with change",
docs/architecture.md). New messages are fetched newest first (highest message number
first) in batches; each batch commits with its copies tagged by UIDL (copies.pop3_tag), so
a process killed anywhere re-fetches at most one batch. A UIDL that left the server marks
its copy gone.

Leave on server is the default (invariant "read-only mailbox"). When the user chose
deletion, a message is marked with DELE only after the transaction that stored it has
committed, and the server deletes it at QUIT (RFC 1939 §6): a crash before QUIT deletes
nothing. There is no Sent folder: mail the owner sent arrives, if at all, as a copy in the
maildrop, and ingest's classifier makes it outbound because the owner's addresses and
aliases are internal. `--since` does not apply: POP3 cannot search by date.

A RETR the server refuses for one message (`MessageRefused`) is retried at the next
syncs, then quarantined, like an IMAP FETCH (sync/quarantine.py; the row's `uid` is the
UIDL's hash, `server_id` the UIDL): POP3 has no cursor, so the message stays "new" until
it is stored or quarantined; a quarantined or dismissed one is no longer fetched, and a
failed one is never deleted.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailroom.connectors.base import FolderInfo, FolderRole, RawMessage, Unreadable
from mailroom.connectors.pop3 import MessageRefused
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState
from mailroom.sync import copies, quarantine
from mailroom.sync.folders import (
    FolderReport,
    FolderStage,
    SyncContext,
    commit_batch,
    folder_state,
)
from mailroom.sync.quarantine import CursorHold, Place, QuarantineState
from mailroom.sync.source import Pop3Source

INBOX = FolderInfo(name=copies.POP3_FOLDER, role=FolderRole.INBOX)
PLACE_UIDVALIDITY = copies.POP3_UIDVALIDITY


def sync_pop3(
    ctx: SyncContext, source: Pop3Source, report: FolderReport, *, delete: bool = False
) -> None:
    """One POP3 pass: new messages in, vanished ones marked gone, deletions if chosen."""
    listing = source.listing()
    on_server = {uidl for _, uidl, _ in listing}
    place = Place(ctx.mailbox_id, INBOX.name, PLACE_UIDVALIDITY)
    with transaction(ctx.app.sessions) as session:
        known = copies.pop3_live(session, mailbox_id=ctx.mailbox_id)
        folder_state(session, ctx.mailbox_id, INBOX)
        held = quarantine.known(session, place)
        left = set(held) - {copies.pop3_uid(uidl) for uidl in on_server}
        quarantine.forget_stored(session, place, left)  # no longer on the server
    given_up = {uid for uid, state in held.items() if state != QuarantineState.RETRYING}
    fresh = [
        item
        for item in listing
        if item[1] not in known and copies.pop3_uid(item[1]) not in given_up
    ][::-1]  # newest first
    if delete:  # stored by an earlier session whose QUIT never came: their DELE was lost
        for number, uidl, _ in listing:
            if uidl in known:
                source.delete(number)
    gone = set(known) - on_server
    if gone:
        report.gone = len(gone)

        def mark(session: Session) -> None:
            copies.mark_gone(
                session,
                mailbox_id=ctx.mailbox_id,
                folder=INBOX.name,
                uidvalidity=copies.POP3_UIDVALIDITY,
                uids=[copies.pop3_uid(u) for u in gone],
            )

        commit_batch(ctx, INBOX, [], lambda s: None, extra=mark)
    if fresh:
        total, nbytes = len(fresh), sum(size for _, _, size in fresh)

        def add_totals(state: FolderState) -> None:
            # what is done plus what is left: a retry after a failed RETR counts the
            # messages still to fetch once, not once more per attempt
            state.stage = FolderStage.BACKFILL
            state.uidvalidity = copies.POP3_UIDVALIDITY
            state.total_messages = state.done_messages + total
            state.total_bytes = state.done_bytes + nbytes

        commit_batch(ctx, INBOX, [], add_totals)
    hold = CursorHold(forward=True)
    for start in range(0, len(fresh), ctx.batch_size):
        batch = fresh[start : start + ctx.batch_size]
        raws, failed = _retrieve(source, batch)
        tags = {copies.pop3_uid(uidl): uidl for _, uidl, _ in batch}
        sizes = {copies.pop3_uid(uidl): size for _, uidl, size in batch}
        stored = {raw.uid for raw in raws}
        settled = [uid for uid in stored if uid in held]

        def advance(
            state: FolderState, sizes: dict[int, int] = sizes, stored: set[int] = stored
        ) -> None:
            # stored or quarantined now: each counted once (a retrying one is still "new")
            done = [uid for uid in sizes if uid in stored or uid in given_up]
            state.done_messages += len(done)
            state.done_bytes += sum(sizes[uid] for uid in done)

        def tag(
            session: Session,
            tags: dict[int, str] = tags,
            sizes: dict[int, int] = sizes,
            failed: list[Unreadable] = failed,
            settled: list[int] = settled,
        ) -> None:
            session.flush()
            copies.pop3_tag(session, mailbox_id=ctx.mailbox_id, uidls=tags)
            quarantine.forget_stored(session, place, settled)
            rows = quarantine.record_failures(session, place, failed, sizes=sizes, server_ids=tags)
            hold.note(rows)
            given_up.update(r.uid for r in rows if r.state != QuarantineState.RETRYING)

        result = commit_batch(ctx, INBOX, raws, advance, extra=tag)
        report.add(result, len(raws))
        if delete:  # only now, after the commit, and only what was stored; at QUIT
            for number, uidl, _ in batch:
                if copies.pop3_uid(uidl) in stored:
                    source.delete(number)
        if ctx.stopping:
            report.unfetched += hold.failures
            return
    report.unfetched += hold.failures

    def finish(state: FolderState) -> None:
        state.stage = FolderStage.READY
        state.uidvalidity = copies.POP3_UIDVALIDITY
        state.messages = len(listing)

    commit_batch(ctx, INBOX, [], finish)


def _retrieve(
    source: Pop3Source, batch: list[tuple[int, str, int]]
) -> tuple[list[RawMessage], list[Unreadable]]:
    """RETR each message of the batch; those the server refuses are `Unreadable`."""
    raws, failed = [], []
    too_big = quarantine.over_limit((copies.pop3_uid(uidl), size) for _, uidl, size in batch)
    for number, uidl, _ in batch:
        uid = copies.pop3_uid(uidl)
        if uid in too_big:
            failed.append(too_big[uid])
            continue
        try:
            data = source.retrieve(number)
        except MessageRefused as exc:
            failed.append(Unreadable(uid, exc.message))
            continue
        raws.append(
            RawMessage(folder=INBOX.name, uidvalidity=PLACE_UIDVALIDITY, uid=uid, data=data)
        )
    return raws, failed
