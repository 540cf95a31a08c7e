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
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailroom.connectors.base import FolderInfo, FolderRole, RawMessage
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState
from mailroom.sync import copies
from mailroom.sync.folders import (
    FolderReport,
    FolderStage,
    SyncContext,
    commit_batch,
    folder_state,
)
from mailroom.sync.source import Pop3Source

INBOX = FolderInfo(name=copies.POP3_FOLDER, role=FolderRole.INBOX)


def sync_pop3(
    ctx: SyncContext, source: Pop3Source, report: FolderReport, *, delete: bool = False
) -> None:
    """One POP3 pass: new messages in, vanished ones marked gone, deletions if chosen."""
    listing = source.listing()
    on_server = {uidl for _, uidl, _ in listing}
    with transaction(ctx.app.sessions) as session:
        known = copies.pop3_live(session, mailbox_id=ctx.mailbox_id)
        folder_state(session, ctx.mailbox_id, INBOX)
    fresh = [item for item in listing if item[1] not in known][::-1]  # newest first
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
    for start in range(0, len(fresh), ctx.batch_size):
        batch = fresh[start : start + ctx.batch_size]
        raws = [
            RawMessage(
                folder=INBOX.name,
                uidvalidity=copies.POP3_UIDVALIDITY,
                uid=copies.pop3_uid(uidl),
                data=source.retrieve(number),
            )
            for number, uidl, _ in batch
        ]
        tags = {copies.pop3_uid(uidl): uidl for _, uidl, _ in batch}
        done, done_bytes = len(batch), sum(size for _, _, size in batch)

        def advance(state: FolderState, done: int = done, done_bytes: int = done_bytes) -> None:
            state.done_messages += done
            state.done_bytes += done_bytes

        def tag(session: Session, tags: dict[int, str] = tags) -> None:
            session.flush()
            copies.pop3_tag(session, mailbox_id=ctx.mailbox_id, uidls=tags)

        result = commit_batch(ctx, INBOX, raws, advance, extra=tag)
        report.add(result, len(raws))
        if delete:  # only now, after the commit; applied by the server at QUIT
            for number, _, _ in batch:
                source.delete(number)
        if ctx.stopping:
            return

    def finish(state: FolderState) -> None:
        state.stage = FolderStage.READY
        state.uidvalidity = copies.POP3_UIDVALIDITY
        state.messages = len(listing)

    commit_batch(ctx, INBOX, [], finish)
