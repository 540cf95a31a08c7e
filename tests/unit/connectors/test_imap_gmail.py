"""Gmail's FETCH items read without a server (connectors.imap_gmail): X-GM-LABELS as Google
documents them (system labels, quoted names, modified UTF-7), bounded and checked."""

from __future__ import annotations

import pytest

from mailroom.connectors.imap_gmail import MAX_LABELS, parse_labels
from mailroom.errors import ProtocolError


def test_labels_are_read_as_google_sends_them_atoms_quoted_names_and_modified_utf7() -> None:
    line = (
        b"1 (X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Inbox \\Sent Important "
        b'"Muy Importante" "a \\"quoted\\" one" Caf&AOk-) UID 4)'
    )
    assert parse_labels(line) == tuple(
        sorted(["\\Inbox", "\\Sent", "Important", "Muy Importante", 'a "quoted" one', "Café"])
    )
    assert parse_labels(b"1 (X-GM-LABELS () UID 4)") == ()
    assert parse_labels(b"1 (UID 4 FLAGS ())") == ()


@pytest.mark.parametrize(
    "line",
    [
        b"1 (X-GM-LABELS (\\Inbox UID 4",
        b'1 (X-GM-LABELS ("unterminated)',
        b"1 (X-GM-LABELS (" + b"x " * (MAX_LABELS + 1) + b")",
        b"1 (X-GM-LABELS (" + b"y" * 1001 + b")",
    ],
)
def test_a_broken_or_endless_label_list_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_labels(line)
