"""Copy bookkeeping beyond ingest: which copies are live, and marking copies gone.

A copy row is one place a message was seen (mailbox, folder, UIDVALIDITY, UID). When the
message is expunged or moved away, or its folder's UIDVALIDITY changes, the copy is not
deleted: `gone_at` records when it left (the CRM is the archive: invariant "one row per
message", docs/architecture.md). The message and its links are never touched here. POP3
copies carry their UIDL in `server_id`, and their `uid` is a stable 63-bit hash of it
(`pop3_uid`). A copy's `flags` are the server's, as last reported (`update_flags`);
nothing here ever writes them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailroom.db.models import MessageCopy

CHUNK = 500
POP3_FOLDER = "INBOX"
POP3_UIDVALIDITY = 0


def live_uids(session: Session, *, mailbox_id: int, folder: str, uidvalidity: int) -> set[int]:
    """UIDs of the copies in this folder (and UIDVALIDITY) not yet known to be gone."""
    return set(
        session.scalars(
            select(MessageCopy.uid).where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.uidvalidity == uidvalidity,
                MessageCopy.gone_at.is_(None),
            )
        )
    )


def highest_live_uid(
    session: Session, *, mailbox_id: int, folder: str, uidvalidity: int
) -> int | None:
    """The highest UID of the folder's live copies (None: none), from the copies' unique
    index: what a QRESYNC resync asks about, without loading every UID (`live_uids`)."""
    return session.scalar(
        select(func.max(MessageCopy.uid)).where(
            MessageCopy.mailbox_id == mailbox_id,
            MessageCopy.folder == folder,
            MessageCopy.uidvalidity == uidvalidity,
            MessageCopy.gone_at.is_(None),
        )
    )


def mark_gone(
    session: Session, *, mailbox_id: int, folder: str, uidvalidity: int, uids: Iterable[int]
) -> int:
    """Set gone_at on these copies; returns how many were live."""
    now = datetime.now(UTC)
    ordered = sorted(set(uids))
    count = 0
    for start in range(0, len(ordered), CHUNK):
        result = session.execute(
            update(MessageCopy)
            .where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.uidvalidity == uidvalidity,
                MessageCopy.uid.in_(ordered[start : start + CHUNK]),
                MessageCopy.gone_at.is_(None),
            )
            .values(gone_at=now)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def retire_other_uidvalidities(session: Session, *, mailbox_id: int, folder: str, keep: int) -> int:
    """Mark gone every live copy of the folder stamped with another UIDVALIDITY.

    After a UIDVALIDITY change the old UIDs mean nothing (RFC 3501 §2.3.1.1); the rescan
    records the same messages again under the new UIDVALIDITY (ingest finds them by
    identity, so no message is duplicated).
    """
    result = session.execute(
        update(MessageCopy)
        .where(
            MessageCopy.mailbox_id == mailbox_id,
            MessageCopy.folder == folder,
            MessageCopy.uidvalidity != keep,
            MessageCopy.gone_at.is_(None),
        )
        .values(gone_at=datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def pop3_uid(uidl: str) -> int:
    """A stable positive 63-bit number for a POP3 UIDL (copy rows need an integer UID)."""
    return int.from_bytes(hashlib.sha256(uidl.encode("utf-8")).digest()[:8], "big") >> 1


def pop3_live(session: Session, *, mailbox_id: int) -> dict[str, int]:
    """UIDL → copy id of the mailbox's POP3 copies not known to be gone."""
    rows = session.execute(
        select(MessageCopy.server_id, MessageCopy.id).where(
            MessageCopy.mailbox_id == mailbox_id,
            MessageCopy.folder == POP3_FOLDER,
            MessageCopy.uidvalidity == POP3_UIDVALIDITY,
            MessageCopy.gone_at.is_(None),
        )
    )
    return {uidl: cid for uidl, cid in rows if uidl is not None}


def pop3_tag(session: Session, *, mailbox_id: int, uidls: dict[int, str]) -> None:
    """Store each copy's UIDL (keyed by its hashed uid), and revive one seen again."""
    items = list(uidls.items())
    for start in range(0, len(items), CHUNK):
        chunk = dict(items[start : start + CHUNK])
        copies = session.scalars(
            select(MessageCopy).where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == POP3_FOLDER,
                MessageCopy.uidvalidity == POP3_UIDVALIDITY,
                MessageCopy.uid.in_(list(chunk)),
            )
        )
        for copy in copies:
            copy.server_id = chunk[copy.uid]
            copy.gone_at = None
    session.flush()


def update_flags(
    session: Session,
    *,
    mailbox_id: int,
    folder: str,
    uidvalidity: int,
    flags: Mapping[int, Sequence[str]],
) -> int:
    """Store the flags the server reported for these UIDs; returns how many changed.

    Only the copy rows change: the flags are what the server says (another client set
    \\Seen or \\Flagged), and Mailroom never sends them back (no STORE: invariant
    "read-only mailbox", docs/architecture.md).
    """
    items = sorted(flags.items())
    changed = 0
    for start in range(0, len(items), CHUNK):
        chunk = dict(items[start : start + CHUNK])
        rows = session.execute(
            select(MessageCopy.id, MessageCopy.uid, MessageCopy.flags).where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.uidvalidity == uidvalidity,
                MessageCopy.uid.in_(list(chunk)),
            )
        )
        updates = [
            {"id": cid, "flags": sorted(chunk[uid])}
            for cid, uid, old in rows
            if sorted(old or []) != sorted(chunk[uid])
        ]
        if updates:
            session.execute(update(MessageCopy), updates)  # bulk UPDATE by primary key
            changed += len(updates)
    return changed
