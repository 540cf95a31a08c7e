"""An SMTP receiver (aiosmtpd) that speaks the protocol and leaves every decision to a handler.

aiosmtpd's Controller runs the SMTP protocol on an asyncio loop in its own thread. This
module maps two questions to SMTP replies and knows nothing of what the mail is for:

- RCPT (RFC 5321 §4.1.1.3): `ReceiverHandler.check_recipient` accepts the recipient
  (None: 250) or refuses it at once (a `Refusal`: 550 with its RFC 3463 status), so mail
  for a refused recipient is never accepted;
- DATA: `ReceiverHandler.receive` takes the message for the accepted recipients (None:
  250) or refuses it (550).

The handler runs in the default thread pool, never on the SMTP loop. An exception from it
answers 451, so the sending server keeps the mail and tries again (RFC 5321 §4.2.5).
STARTTLS (RFC 3207) is offered when a TLS context is given, not required; messages over
`data_size_limit` are refused with 552 after SIZE (RFC 1870) is announced.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

DATA_SIZE_LIMIT = 25 * 1024 * 1024
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A permanent refusal: the RFC 3463 enhanced status (`5.1.1`, `5.7.1`) and the text."""

    status: str
    text: str

    def reply(self) -> str:
        """The SMTP reply line (code 550) for this refusal."""
        return f"550 {self.status} {self.text}"


class ReceiverHandler(Protocol):
    """What the receiver asks; both calls run in a worker thread and may block."""

    def check_recipient(self, address: str, mail_from: str) -> Refusal | None:
        """None to accept `address` as a recipient, else why not."""

    def receive(self, mail_from: str, recipients: Sequence[str], data: bytes) -> Refusal | None:
        """Take the message for the accepted recipients; None when it was taken."""


class _Hooks:
    """The aiosmtpd handler: one `ReceiverHandler` call per hook, answers mapped to replies."""

    def __init__(self, handler: ReceiverHandler) -> None:
        self.handler = handler

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """RCPT TO: accept or refuse one recipient."""
        try:
            refusal = await self._in_thread(
                self.handler.check_recipient, address, envelope.mail_from or ""
            )
        except Exception:
            log.exception("smtp receiver: checking the recipient failed")
            return TRY_LATER
        if refusal is not None:
            return refusal.reply()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """DATA: hand the message over for the accepted recipients."""
        data = envelope.original_content or b""
        try:
            refusal = await self._in_thread(
                self.handler.receive, envelope.mail_from or "", list(envelope.rcpt_tos), data
            )
        except Exception:
            log.exception("smtp receiver: taking a message failed")
            return TRY_LATER
        return refusal.reply() if refusal is not None else "250 OK"


@dataclass
class SmtpReceiver:
    """A running receiver; `stop()` shuts it down."""

    controller: Controller
    host: str
    port: int

    def stop(self) -> None:
        """Stop the SMTP loop and its thread."""
        self.controller.stop()


def start_receiver(
    handler: ReceiverHandler,
    *,
    host: str,
    port: int,
    server_hostname: str,
    tls_context: ssl.SSLContext | None,
    data_size_limit: int = DATA_SIZE_LIMIT,
) -> SmtpReceiver:
    """Receive mail on host:port in a background thread, asking `handler` what to take."""
    controller = Controller(
        _Hooks(handler),
        hostname=host,
        port=port,
        server_hostname=server_hostname,
        tls_context=tls_context,
        require_starttls=False,
        data_size_limit=data_size_limit,
    )
    controller.start()
    return SmtpReceiver(controller=controller, host=host, port=port)
