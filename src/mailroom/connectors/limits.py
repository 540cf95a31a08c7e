"""Bounds on what a mail server may send: every number checked, every answer capped.

A member can point Mailroom at any host, so a server's answer is input like any other.
Numbers: UIDs, UIDVALIDITY, UIDNEXT, message counts and sizes are 32-bit unsigned
(RFC 3501 §9 / RFC 9051 §9, `number` and `nz-number`), a mod-sequence 63-bit (RFC 7162
§7, `mod-sequence-value`); POP3 message numbers and octet counts (RFC 1939) get the same
32-bit bound. A value outside its range, or not a number at all, is a `ProtocolError`
naming the field and the value, raised at the connector, before anything is stored (an
unchecked `UID 99999999999999999999` overflowed SQLite's integer mid-batch).

Sizes: no answer may grow without bound (an endless `* LIST` once grew a process to
5 GB). `AnswerLimits` caps a line, a literal (the message size limit), the folders of one
LIST, the untagged responses of one command and the bytes of one command; the IMAP
reader (imap_bounded.py) and the POP3 reader (pop3.py) enforce them while reading, so a
server past a cap costs at most that cap. Exceeding one raises `AnswerTooLarge`, which
the connection turns into a `ProtocolError` for that mailbox only (`server_error`).

Time: no answer may take forever either (a server dripping a byte every 5 s). Each
command has `max(command_seconds, bytes / command_rate)` seconds (deadline.py); past it,
`AnswerTooSlow`, a kind of `AnswerTooLarge`, handled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.errors import ProtocolError

U32_MAX = 2**32 - 1
MODSEQ_MAX = 2**63 - 1
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """The caps on one server answer (per connection; defaults suit any real mailbox)."""

    line: int = 1_000_000  # one line outside literals (imaplib's own _MAXLINE)
    message: int = 256 * MIB  # one literal or one RETR: the message size limit
    folders: int = 10_000  # `* LIST` answers to one LIST
    untagged: int = 5_000_000  # untagged responses to one command (UID FETCH RFC822.SIZE)
    command: int = 512 * MIB  # bytes of one command's whole answer
    # time budget of one command (deadline.py): max(command_seconds, bytes / command_rate)
    command_seconds: float = 60.0
    command_rate: int = 10_000  # bytes a second, on average over the whole answer

    def __post_init__(self) -> None:
        sizes = (self.line, self.message, self.folders, self.untagged, self.command)
        if min(*sizes, self.command_rate) < 1:
            raise ValueError("every answer limit must be >= 1")
        if not self.command_seconds > 0:
            raise ValueError("the command time budget must be > 0 seconds")


DEFAULT_LIMITS = AnswerLimits()
TOO_LARGE_HINT = (
    "The server's answer went past Mailroom's limits (connectors/limits.py), which protect "
    "every other mailbox; Mailroom retries later. If it persists, the server is broken or "
    "hostile: check the host with its administrator."
)


class AnswerTooLarge(Exception):
    """A server's answer went past one of `AnswerLimits`; `what` names the cap."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def number(
    value: object, what: str, *, low: int = 0, high: int = U32_MAX, server: str = "The server"
) -> int:
    """`value` (bytes, str or int from a server's answer) as an int in [low, high].

    Raises ProtocolError naming the server ("The IMAP server HOST"), `what` (e.g. "a UID",
    "UIDNEXT of INBOX") and the value.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        result: int | None = value
    else:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        text = text.strip()
        result = int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None
    if result is None or not low <= result <= high:
        raise ProtocolError(
            f"{server} sent {what} {_shown(value)}, which is not a number from {low} to "
            f"{high} (RFC 9051 §9)",
            hint="The server's answer is malformed; Mailroom retries later. If it persists, "
            "the server's administrator should check its log.",
        )
    return result


def nz_number(value: object, what: str, *, server: str = "The server") -> int:
    """A 32-bit `nz-number` (1 … 2^32-1): UIDs, UIDVALIDITY, UIDNEXT."""
    return number(value, what, low=1, server=server)


def modseq(value: object, what: str, *, server: str = "The server") -> int:
    """A 63-bit mod-sequence (RFC 7162 §7); 0 is accepted (a server without mod-sequences)."""
    return number(value, what, high=MODSEQ_MAX, server=server)


def _shown(value: object) -> str:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")
