"""A 25 MB attachment syncs whole, in bounded memory (issue 3 §12), against real Dovecot.

The message travels as one IMAP literal of about 34 MB (base64), makes a batch of its
own (connectors.base.size_batches), is stored as one content-addressed raw blob, and its
attachment comes out byte for byte when its bodies are parsed on first read. The Python
heap's peak during the sync (tracemalloc) stays within a few copies of the message:
memory is bounded by the batch, not by the mailbox.
"""

from __future__ import annotations

import hashlib
import tracemalloc

from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Attachment, Message
from mailroom.ingest.bodies import ensure_bodies
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import assert_db_matches_server, connect_mailbox

MB = 1 << 20


def test_a_25_mb_attachment_message_is_stored_whole_in_bounded_memory(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    payload = hashlib.shake_256(b"mailroom").digest(25 * MB)  # incompressible, 25 MiB
    big = build_message(
        sender="big@client.example", subject="Drawings", attachment=("plans.bin", payload)
    )
    dovecot.append(login, "INBOX", big)
    for n in range(3):  # small mail before and after it, in the same folder
        dovecot.append(login, "INBOX", build_message(sender=f"c{n}@client.example", minutes=n))
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))

    tracemalloc.start()
    try:
        report = sync_mailbox(sqlite_app, box, batch_size=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.error is None and report.fetched == 4
    assert peak < 6 * len(big), f"peak {peak / MB:.0f} MB for a {len(big) / MB:.0f} MB message"
    with sqlite_app.sessions() as session:
        message = session.scalar(select(Message).where(Message.subject == "Drawings"))
        assert message is not None and message.raw_sha256 is not None
        raw = sqlite_app.blobs.read_raw(message.raw_sha256, message.raw_location)
        assert len(raw) >= len(big) and hashlib.sha256(raw).hexdigest() == message.raw_sha256
        ensure_bodies(session, message, sqlite_app.blobs, commit=True)
        stored = session.scalars(
            select(Attachment).where(Attachment.message_id == message.id)
        ).all()
        assert [(a.filename, a.size) for a in stored] == [("plans.bin", len(payload))]
        assert sqlite_app.blobs.get(stored[0].sha256) == payload
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
