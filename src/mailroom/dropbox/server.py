"""The SMTP receiver for drop addresses, run inside `mailroom serve` (aiosmtpd).

aiosmtpd's Controller runs the SMTP protocol on an asyncio loop in its own thread; this
module is only the handler and the start/stop around it. The handler's hooks:

- RCPT (RFC 5321 §4.1.1.3): a recipient that is not a known `log+TOKEN@…` address is
  refused with 550 at once, so mail to a wrong or revoked token is never accepted; for a
  company that refuses strangers, an envelope sender that is not one of its users is
  refused here too (550 5.7.1);
- DATA: each company's message is logged, quarantined or refused (dropbox.service); if
  every recipient refused it, the answer is 550, else 250. A failure of Mailroom itself
  answers 451, so the sending server keeps the mail and tries again.
Database work runs in the default thread pool, never on the SMTP loop.

STARTTLS (RFC 3207) is offered, not required (mail servers use it opportunistically);
messages over `data_size_limit` are refused with 552 after SIZE (RFC 1870) is announced.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.outbox_models import DropToken
from mailroom.dropbox.service import DropOutcome, receive, sender_allowed
from mailroom.dropbox.tls import dropbox_context
from mailroom.dropbox.tokens import drop_domain, find_token

log = logging.getLogger(__name__)

DATA_SIZE_LIMIT = 25 * 1024 * 1024


class DropboxHandler:
    """aiosmtpd handler: checks recipients against drop tokens, logs what arrives."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def _rcpt_verdict(self, address: str, mail_from: str) -> str:
        with self.app.sessions() as session:
            token = find_token(session, address)
            if token is None:
                return "550 5.1.1 No such drop address here"
            if token.unknown_senders == "refuse" and not sender_allowed(
                session, token=token, envelope_from=mail_from
            ):
                return "550 5.7.1 This drop address takes mail from the company's users only"
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            verdict = await self._in_thread(self._rcpt_verdict, address, envelope.mail_from or "")
        except Exception:
            log.exception("dropbox: checking the recipient failed")
            return "451 4.3.0 Temporary failure, please try again later"
        if verdict.startswith("250"):
            envelope.rcpt_tos.append(address)
        return str(verdict)

    def _deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[DropOutcome]:
        outcomes: list[DropOutcome] = []
        seen: set[int] = set()
        for address in rcpts:
            with transaction(self.app.sessions) as session:
                token: DropToken | None = find_token(session, address)
                if token is None or token.company_id in seen:
                    continue
                seen.add(token.company_id)
                outcome = receive(
                    session, token=token, envelope_from=mail_from, data=data, blobs=self.app.blobs
                )
            log.info(
                "dropbox: company %s: %s (%s)", token.company_id, outcome.status, outcome.reason
            )
            outcomes.append(outcome)
        return outcomes

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        try:
            outcomes: list[DropOutcome] = await self._in_thread(
                self._deliver, envelope.mail_from or "", list(envelope.rcpt_tos), data
            )
        except Exception:
            log.exception("dropbox: logging a message failed")
            return "451 4.3.0 Temporary failure, please try again later"
        if outcomes and all(o.status == "refused" for o in outcomes):
            return f"550 5.7.1 Not accepted: {outcomes[0].reason}"
        return "250 OK"


@dataclass
class DropboxServer:
    """A running drop server; `stop()` shuts it down."""

    controller: Controller
    host: str
    port: int

    def stop(self) -> None:
        self.controller.stop()


def start_dropbox_server(
    app: App,
    host: str,
    port: int,
    *,
    tls_context: ssl.SSLContext | None = None,
    data_size_limit: int = DATA_SIZE_LIMIT,
) -> DropboxServer:
    """Start receiving drop-address mail on host:port in a background thread."""
    name = drop_domain()
    ctx = tls_context or dropbox_context(app.settings.data_dir, name)
    controller = Controller(
        DropboxHandler(app),
        hostname=host,
        port=port,
        server_hostname=name,
        tls_context=ctx,
        require_starttls=False,
        data_size_limit=data_size_limit,
    )
    controller.start()
    log.info("dropbox: receiving on %s:%s for *@%s", host, port, name)
    return DropboxServer(controller=controller, host=host, port=port)
