"""Composing outgoing mail: threading headers, subjects, Bcc kept off the wire."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from mailroom.errors import BadInput
from mailroom.outbox.compose import Draft, Parent, compose, reply_subject, wire_bytes


def draft(**fields: object) -> Draft:
    values: dict[str, object] = {
        "from_address": "ann@acme.example",
        "from_name": "Ann Seller",
        "to": ["jo@client.example"],
        "subject": "Quote",
        "text": "Hello",
    }
    values.update(fields)
    return Draft(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quote", "Re: Quote"),
        ("Re: Quote", "Re: Quote"),
        ("RE: Quote", "RE: Quote"),
        ("AW: Angebot", "AW: Angebot"),
        ("Re[2]: Quote", "Re[2]: Quote"),
        ("Fwd: Quote", "Re: Fwd: Quote"),
    ],
)
def test_a_reply_gets_exactly_one_re_prefix(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_a_long_thread_keeps_the_root_and_the_latest_references() -> None:
    chain = tuple(f"m{n}@x.example" for n in range(30))
    made = compose(draft(parent=Parent("last@x.example", chain, "Quote")))
    msg = message_from_bytes(made.data, policy=policy.default)
    refs = str(msg["References"]).split()
    assert refs[0] == "<m0@x.example>" and refs[-1] == "<last@x.example>" and len(refs) == 20
    assert msg["In-Reply-To"] == "<last@x.example>" and msg["Subject"] == "Re: Quote"


def test_bcc_is_kept_for_the_sent_copy_and_cut_from_the_wire() -> None:
    long_bcc = [f"person{n}@far-away-domain.example" for n in range(8)]  # folds over lines
    made = compose(draft(bcc=long_bcc))
    assert b"Bcc:" in made.data
    wire = wire_bytes(made.data)
    assert b"Bcc" not in wire and b"far-away" not in wire
    assert message_from_bytes(wire, policy=policy.default)["To"] == "jo@client.example"
    assert set(long_bcc) <= set(made.recipients)


def test_a_non_ascii_subject_and_name_are_encoded_not_pasted() -> None:
    made = compose(draft(subject="Angebot für Müller", from_name="Zoë"))
    head = made.data.split(b"\r\n\r\n")[0]
    assert head.isascii()
    msg = message_from_bytes(made.data, policy=policy.default)
    assert msg["Subject"] == "Angebot für Müller" and msg["From"].addresses[0].display_name == "Zoë"


def test_a_name_with_a_line_break_is_refused() -> None:
    with pytest.raises(BadInput):
        compose(draft(from_name="Ann\r\nBcc: victim@client.example"))
