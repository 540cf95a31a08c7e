"""Log a message Mailroom sent or received itself, without waiting for a sync.

Both the outbox (a message just accepted by the SMTP server) and the drop address (a
message BCC'd or forwarded to it) go through the same ingestion as synced mail, so the
same rules apply: one `Message` per (company, Message-ID), direction from the company's
directory, links to every record holding an external participant.

- With a Sent copy (the folder, UIDVALIDITY and UID the APPEND returned), the message is
  ingested with `sync.ingest.ingest_batch` exactly as a sync would ingest that copy; the
  next sync fetches the same UID, finds the copy known, and writes nothing.
- Without one (Gmail keeps its own Sent copy; drop-box mail lives in no mailbox), the
  message goes through the same `ingest_batch` (filters, rules, links) and no copy row is
  kept; a later sync that sees it adds its copy to the same row (identity: Message-ID).
The record the user sent from is linked by the caller (matching.manual, reason `manual`).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.models import Mailbox, Message, MessageCopy
from mailroom.mail.blobs import BlobStore
from mailroom.mail.parse import parse_message
from mailroom.matching.directory import load_directory
from mailroom.matching.policy import load_policy
from mailroom.sync import ingest

PLACEHOLDER_FOLDER = "(mailroom: no copy)"


def store_message(
    session: Session,
    *,
    company_id: int,
    mailbox_id: int | None,
    blobs: BlobStore,
    data: bytes,
    copy: RawMessage | None = None,
) -> tuple[int, bool] | None:
    """Store `data` (once per company) and link it; (message row id, whether it is new).

    `copy` is where the bytes sit in `mailbox_id` (a Sent copy). Without one, the message
    is ingested under the policy of `mailbox_id` (None: mail that came by no mailbox) and
    no copy row is kept. None when the company has no mailbox at all to ingest through.
    """
    directory = load_directory(session, company_id)
    identity = ingest.identity_of(parse_message(data if copy is None else copy.data))
    if copy is not None:
        if mailbox_id is None:
            raise ValueError("a copy needs the mailbox it is in")
        target = ingest.IngestTarget(
            company_id=company_id, mailbox_id=mailbox_id, directory=directory, blobs=blobs
        )
        result = ingest.ingest_batch(session, target, [copy])
        return _message_id(session, company_id, identity), bool(result.messages)
    # ingest_batch always records the place it saw a message; a copy-less message goes in
    # with a placeholder place, removed again before the transaction commits.
    holder = mailbox_id
    if holder is None:
        holder = session.scalar(
            select(Mailbox.id).where(Mailbox.company_id == company_id).order_by(Mailbox.id)
        )
        if holder is None:
            return None
    target = ingest.IngestTarget(
        company_id=company_id,
        mailbox_id=holder,
        directory=directory,
        blobs=blobs,
        policy=load_policy(session, company_id=company_id, mailbox_id=mailbox_id),
    )
    placeholder = RawMessage(folder=PLACEHOLDER_FOLDER, uidvalidity=0, uid=0, data=data)
    result = ingest.ingest_batch(session, target, [placeholder])
    session.execute(
        delete(MessageCopy).where(
            MessageCopy.mailbox_id == holder, MessageCopy.folder == PLACEHOLDER_FOLDER
        )
    )
    session.flush()
    return _message_id(session, company_id, identity), bool(result.messages)


def _message_id(session: Session, company_id: int, identity: str) -> int:
    found = session.scalar(
        select(Message.id).where(Message.company_id == company_id, Message.identity == identity)
    )
    if found is None:  # ingest_batch stores every message it is given
        raise RuntimeError(f"message {identity!r} was not stored")
    return found
