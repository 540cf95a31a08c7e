"""Fill a Dovecot user's INBOX with N realistic messages, fast, for the sync benchmark.

Messages are written straight into the user's Maildir (`cur/`, flag S on two in three)
and Dovecot indexes them once (`doveadm mailbox status`), which takes seconds where N
APPENDs would take minutes. Content is deterministic for a seed: 5,000 correspondents on
1,200 domains, threads with In-Reply-To/References, Received chains, a third multipart
alternative (text + HTML), one in twelve with an attachment; sizes from ~1 KB to
~2 MB with a median near 6 KB and a mean near 30 KB (0.58 GiB per 20,000 messages; the
issue's reference mailbox averages 18 KB, so this one is the heavier).
"""

from __future__ import annotations

import base64
import os
import random
import time
from email.utils import format_datetime
from pathlib import Path

WORDS = [
    "quote",
    "order",
    "invoice",
    "delivery",
    "meeting",
    "proposal",
    "contract",
    "price",
    "discount",
    "offer",
    "schedule",
    "update",
    "report",
    "question",
    "request",
    "support",
    "issue",
    "ticket",
    "shipment",
    "account",
    "payment",
    "review",
    "project",
    "timeline",
    "budget",
    "estimate",
    "call",
    "follow-up",
    "renewal",
    "licence",
    "demo",
    "trial",
    "feedback",
]


def correspondents(rng: random.Random, count: int = 5000) -> list[tuple[str, str]]:
    domains = [f"client{n}.example" for n in range(1200)] + ["gmail.com", "outlook.com"]
    first = [
        "Jo",
        "Ann",
        "Sue",
        "Bob",
        "Eve",
        "Max",
        "Ida",
        "Ray",
        "Kim",
        "Lee",
        "Ali",
        "Uma",
        "Tom",
        "Zoe",
        "Ian",
        "Mia",
    ]
    last = [
        "Smith",
        "Jones",
        "Brown",
        "Garcia",
        "Miller",
        "Davis",
        "Lopez",
        "Wilson",
        "Moore",
        "Clark",
        "Hall",
        "Young",
    ]
    people = []
    for n in range(count):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        local = name.lower().replace(" ", ".") + str(n)
        people.append((name, f"{local}@{rng.choice(domains)}"))
    return people


def _text(rng: random.Random, size: int) -> str:
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out)


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.randint(800, 6000)
    if roll < 0.9:
        return rng.randint(6000, 30000)
    if roll < 0.99:
        return rng.randint(30000, 300000)
    return rng.randint(300000, 1500000)


def message(rng: random.Random, n: int, owner: str, people: list[tuple[str, str]]) -> bytes:
    name, address = rng.choice(people)
    inbound = rng.random() < 0.8
    sender, to = (f"{name} <{address}>", owner) if inbound else (owner, f"{name} <{address}>")
    when = time.time() - (100_000 - n) * 900
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))).capitalize()
    headers = [
        f"Received: from mx{n % 7}.example (mx{n % 7}.example [192.0.2.{n % 250}]) by "
        f"imap.acme.example with ESMTPS id {n:08x}; {format_datetime(_dt(when))}",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {'Re: ' if n % 4 == 0 else ''}{subject}",
        f"Date: {format_datetime(_dt(when))}",
        f"Message-ID: <bench.{n}.{rng.getrandbits(40):x}@{address.split('@')[1]}>",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.2:
        cc_name, cc = rng.choice(people)
        headers.append(f"Cc: {cc_name} <{cc}>")
    if n % 4 == 0 and n:
        parent = f"<bench.{n - 1}.parent@example>"
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
    size = _size(rng)
    body = _text(rng, min(size, 12000))
    kind = n % 12
    if kind == 0 or size > 40000:
        blob = base64.encodebytes(os.urandom(max(size - len(body), 1000) * 3 // 4)).decode()
        parts = [
            "Content-Type: multipart/mixed; boundary=b1\n",
            f"--b1\nContent-Type: text/plain; charset=utf-8\n\n{body}\n",
            "--b1\nContent-Type: application/pdf; name=doc.pdf\n"
            "Content-Disposition: attachment; filename=doc.pdf\n"
            f"Content-Transfer-Encoding: base64\n\n{blob}--b1--\n",
        ]
    elif kind % 3 == 0:
        html = "<html><body><p>" + body.replace("\n", "</p><p>") + "</p></body></html>"
        parts = [
            "Content-Type: multipart/alternative; boundary=b2\n",
            f"--b2\nContent-Type: text/plain; charset=utf-8\n\n{body}\n",
            f"--b2\nContent-Type: text/html; charset=utf-8\n\n{html}\n--b2--\n",
        ]
    else:
        parts = ["Content-Type: text/plain; charset=utf-8\n", f"{body}\n"]
    head = "\n".join(headers) + "\n" + parts[0] + "\n"
    return (head + "".join(parts[1:])).encode()


def _dt(ts: float):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def fill(maildir: Path, *, owner: str, count: int, seed: int = 1, start: int = 0) -> int:
    """Write `count` messages into `maildir`/cur; returns the bytes written."""
    rng = random.Random(seed + start)
    people = correspondents(random.Random(seed))
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    stamp = int(time.time())
    for n in range(start, start + count):
        data = message(rng, n, owner, people)
        flags = "S" if n % 3 else ""
        # S= and W= (the size with CRLF line ends, RFC822.SIZE) as Dovecot's own deliveries
        # (LDA, LMTP, IMAP APPEND) name maildir files; without W=, Dovecot reads every file
        # once to answer the sync's first RFC822.SIZE listing (8.9 s at 100,000 messages).
        vsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
        name = f"{stamp}.M{n}P1.bench,S={len(data)},W={vsize}:2,{flags}"
        (maildir / "cur" / name).write_bytes(data)
        total += len(data)
    return total
