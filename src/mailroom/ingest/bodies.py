"""Headers first, bodies later: the sync hot path's parse, and the deferred body parse.

The complete parse (`mail.parse.parse_message`, policy.default with a tree of parts) costs
about 2 ms a message, more than fetching and storing together, and matching needs none of
what it adds (text, HTML, attachments). So the sync engine stores a message from
`mail.parse.parse_headers` (the header block decoded exactly as the complete parse decodes
it) with its raw bytes in the blob store and `Message.bodies_parsed = False`; the rest is
parsed when first needed:

- `ensure_bodies` fills one message's text, HTML and attachments from its raw blob; every
  reader of those (web message view and API, `rules test`) calls it first;
- a rule with a body or attachment condition parses that one message in full during
  ingestion (matching.view.MailView.content), and ingestion then stores its bodies at once;
- `fill_bodies` is the background pass (the scheduler runs it after each sync) that
  parses the rest in bounded batches, oldest first.

Invariants: a message row with `bodies_parsed = False` always names its raw blob; filling
is idempotent (it only ever moves a row from False to True, in the caller's transaction);
a message whose complete parse fails keeps its headers and gets `parse_error` (invariant
"nothing dropped silently", docs/architecture.md: stored raw, with its error).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailroom.db.engine import transaction
from mailroom.db.models import Attachment, Message
from mailroom.mail.blobs import BlobStore
from mailroom.mail.html import inline_sources
from mailroom.mail.message import ParsedMessage
from mailroom.mail.parse import parse_message
from mailroom.matching.linker import clean_text

if TYPE_CHECKING:
    from mailroom.app import App

__all__ = ["ensure_bodies", "fill_bodies", "fill_in_background", "store_bodies"]

FILL_BATCH = 200


def store_bodies(
    session: Session, *, blobs: BlobStore, message: Message, parsed: ParsedMessage
) -> None:
    """Write a complete parse's text, HTML and attachments onto a stored message row."""
    message.text_body = clean_text(parsed.text)
    message.html_body = clean_text(parsed.html)
    if parsed.parse_error and not message.parse_error:
        message.parse_error = clean_text(parsed.parse_error)
    if parsed.attachments:
        session.execute(
            insert(Attachment),
            [
                {
                    "message_id": message.id,
                    "filename": clean_text(att.filename[:500]),
                    "content_type": clean_text(att.content_type[:200]),
                    "size": att.size,
                    "sha256": blobs.put(att.data),
                }
                for att in parsed.attachments
            ],
        )
    message.bodies_parsed = True


def inline_images(message: Message, blobs: BlobStore) -> dict[str, str]:
    """The message's inline images (`cid:` parts) as `data:` URIs, read from its raw bytes.

    Only when its HTML refers to one: the raw message is parsed again for them (their bytes
    are not kept apart from it). Empty when the raw message is gone (retention)."""
    html = message.html_body or ""
    if "cid:" not in html.lower():
        return {}
    raw = blobs.stored_raw(message.raw_sha256, message.raw_location)
    return {} if raw is None else inline_sources(parse_message(raw).attachments)


def ensure_bodies(
    session: Session, message: Message, blobs: BlobStore, *, commit: bool = False
) -> Message:
    """The message with its text, HTML and attachments filled (a no-op once they are).

    Flushes, and with `commit` commits (a reader's session: the parse is kept for the next
    read); otherwise the caller's transaction holds the change."""
    if message.bodies_parsed:
        return message
    # Claim the row first, so two readers at once never store its attachments twice.
    claimed = session.execute(
        update(Message)
        .where(Message.id == message.id, Message.bodies_parsed.is_(False))
        .values(bodies_parsed=True)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 1) == 0:
        session.refresh(message)  # another session filled it
        return message
    raw = blobs.stored_raw(message.raw_sha256, message.raw_location)
    if raw is not None:
        store_bodies(session, blobs=blobs, message=message, parsed=parse_message(raw))
    # else: nothing to parse from (retention removed the blob): nothing more to show
    message.bodies_parsed = True
    session.flush()
    if commit:
        session.commit()
    return message


def fill_bodies(
    session: Session, *, blobs: BlobStore, company_id: int | None = None, limit: int = FILL_BATCH
) -> int:
    """Parse the bodies of up to `limit` messages stored with headers only; how many were
    picked. The batch is claimed in one UPDATE … RETURNING, not one per message, and on
    PostgreSQL picked with SKIP LOCKED, so workers filling at once take different
    messages instead of racing for the same first ones (bench_worker_throughput: each
    added worker raised the CPU per message, a quarter of it these claims)."""
    pick = select(Message.id).where(Message.bodies_parsed.is_(False)).order_by(Message.id)
    if company_id is not None:
        pick = pick.where(Message.company_id == company_id)
    pick = pick.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    picked = list(session.scalars(pick))
    if not picked:
        return 0
    claimed = set(
        session.scalars(
            update(Message)
            .where(Message.id.in_(picked), Message.bodies_parsed.is_(False))
            .values(bodies_parsed=True)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    )
    for message in session.scalars(
        select(Message).where(Message.id.in_(sorted(claimed))).order_by(Message.id)
    ):
        raw = blobs.stored_raw(message.raw_sha256, message.raw_location)
        if raw is not None:
            store_bodies(session, blobs=blobs, message=message, parsed=parse_message(raw))
        message.bodies_parsed = True  # the identity map may hold the row from before
    session.flush()
    return len(picked)


def fill_in_background(
    app: App, *, stop: threading.Event | None = None, budget: int = 10 * FILL_BATCH
) -> int:
    """The background pass: up to `budget` messages, one committed batch at a time, until
    none is left or `stop` is set; how many it parsed. Run after each sync (scheduler)."""
    done = 0
    while done < budget and not (stop is not None and stop.is_set()):
        with transaction(app.sessions) as session:
            count = fill_bodies(session, blobs=app.blobs, limit=min(FILL_BATCH, budget - done))
        done += count
        if count == 0:
            break
    return done
