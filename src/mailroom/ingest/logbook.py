"""Log a message Mailroom sent or received itself, without waiting for a sync.

Both the outbox (a message just accepted by the SMTP server) and the drop address (a
message BCC'd or forwarded to it) go through the same ingestion as synced mail, so the
same rules apply: one `Message` per (company, Message-ID), direction from the company's
directory, links to every record holding an external participant.

- With a Sent copy (the folder, UIDVALIDITY and UID the APPEND returned), the message is
  ingested with `ingest.batch.ingest_batch` exactly as a sync would ingest that copy; the
  next sync fetches the same UID, finds the copy known, and writes nothing.
- Without one (Gmail keeps its own Sent copy; drop-box mail lives in no mailbox), the
  message goes through the same `ingest_batch` (filters, rules, links) and no copy row is
  kept; a later sync that sees it adds its copy to the same row (identity: Message-ID).
The record the user sent from is linked by the caller (matching.manual, reason `manual`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.models import Message
from mailroom.ingest.batch import IngestTarget, identity_of, ingest_batch
from mailroom.mail.blobs import BlobStore
from mailroom.mail.parse import parse_message
from mailroom.matching.directory import load_directory
from mailroom.matching.policy import load_policy


def store_message(
    session: Session,
    *,
    company_id: int,
    mailbox_id: int | None,
    blobs: BlobStore,
    data: bytes,
    copy: RawMessage | None = None,
) -> tuple[int, bool]:
    """Store `data` (once per company) and link it; (message row id, whether it is new).

    `copy` is where the bytes sit in `mailbox_id` (a Sent copy). Without one, the message
    is ingested under the policy of `mailbox_id` (None: mail that came by no mailbox) and
    no copy row is kept.
    """
    directory = load_directory(session, company_id)
    identity = identity_of(parse_message(data if copy is None else copy.data))
    if copy is not None and mailbox_id is None:
        raise ValueError("a copy needs the mailbox it is in")
    target = IngestTarget(
        company_id=company_id,
        # No copy: the message is in no mailbox we sync, so no copy row is kept.
        mailbox_id=mailbox_id if copy is not None else None,
        directory=directory,
        blobs=blobs,
        policy=load_policy(session, company_id=company_id, mailbox_id=mailbox_id),
    )
    raw = copy if copy is not None else RawMessage(folder="", uidvalidity=0, uid=0, data=data)
    result = ingest_batch(session, target, [raw])
    return _message_id(session, company_id, identity), bool(result.messages)


def _message_id(session: Session, company_id: int, identity: str) -> int:
    found = session.scalar(
        select(Message.id).where(Message.company_id == company_id, Message.identity == identity)
    )
    if found is None:  # ingest_batch stores every message it is given
        raise RuntimeError(f"message {identity!r} was not stored")
    return found
