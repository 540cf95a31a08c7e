"""A small real DNS server for the discovery tests: UDP on 127.0.0.1, answers from a dict.

`DnsServer.records` maps (name, type) — lower-case name without the final dot, type as
"A", "AAAA", "SRV", "MX" — to the records' text in zone-file form ("0 1 993
imap.acme.test.", "10 aspmx.l.google.com.", "127.0.0.1"). A name with no record of the
asked type but some other record gets an empty NOERROR answer; an unknown name gets
NXDOMAIN. dnspython's message classes build every answer, so the client under test
parses real DNS wire format. `silent=True` makes a server that reads queries and never
answers (a dead name server, for the deadline tests). Every query is recorded in `asked`.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsServer:
    """A UDP DNS server on 127.0.0.1 (a free port) answering from `records`."""

    def __init__(
        self, records: dict[tuple[str, str], list[str]] | None = None, *, silent: bool = False
    ) -> None:
        self.records: dict[tuple[str, str], list[str]] = dict(records or {})
        self.silent = silent
        self.asked: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the form MAILROOM_DNS_SERVER takes."""
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, kind: str, *values: str) -> None:
        """Answer `values` to (`name`, `kind`) from now on (adds to any already there)."""
        self.records.setdefault((name.lower().rstrip("."), kind.upper()), []).extend(values)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(wire)
            if answer is not None and not self.silent:
                with contextlib.suppress(OSError):
                    self._sock.sendto(answer, peer)

    def _answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.asked.append((name, kind))
        values = self.records.get((name, kind))
        if values:
            try:
                rrset = dns.rrset.from_text_list(question.name, 60, "IN", kind, values)
            except dns.exception.DNSException:  # a test's record text is wrong: say so
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            response.answer.append(rrset)
        elif not any(known == name for known, _kind in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
