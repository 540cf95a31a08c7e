"""Benchmark: first page of a record page with 10,000 messages, server time.

Generates (into a temporary SQLite data dir, or the PostgreSQL URL given with --pg) one
company with a contact holding N messages (default 10,000; each with a copy, two
participants and a link) and a baseline contact with 50, then times in the same run:

- `GET /records/contact/{id}` through the whole app (session lookup, access checks,
  the timeline's queries, Jinja rendering) with an in-process ASGI client, read from the
  app's `Server-Timing` header (server time, as the issue asks), and
- `crm.access.visible_timeline_page` alone (the queries),

for the big record and the baseline record, and prints median and p95 in ms and the
ratio big/baseline, and writes them to bench/results/record-page-<dialect>.json with the
run's commit and package versions (bench/_meta.py). The issue's target: the big record's
first page under 100 ms.

Run:  .venv/bin/python bench/bench_record_page.py [--messages 10000] [--runs 30] [--pg URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._meta import write_result
from mailroom.app import App, open_app
from mailroom.config import Settings
from mailroom.crm import access
from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import (
    Message,
    MessageAddress,
    MessageCopy,
    MessageLink,
    Record,
    User,
)
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.secrets import encode_key, new_key
from mailroom.web.app import create_web_app

PASSWORD = "bench-password-1"


def generate(app: App, *, messages: int) -> tuple[int, int]:
    """Make the company, users, a mailbox and two contacts with N and 50 messages."""
    with transaction(app.sessions) as session:
        company = add_company(session, name="Bench", domains=["bench.example"])
        user = add_user(session, company=company, email="ann@bench.example", password=PASSWORD)
        box = add_mailbox(
            session, app.secrets, user=user, host="imap.test", port=993, password="x-123456"
        )
        big = add_record(
            session,
            company=company,
            record_type="contact",
            name="Big",
            emails=[EmailField("main", "big@client.example")],
        )
        small = add_record(
            session,
            company=company,
            record_type="contact",
            name="Small",
            emails=[EmailField("main", "small@client.example")],
        )
        ids = (company.id, box.id, big.id, small.id)
    company_id, box_id, big_id, small_id = ids
    start = datetime(2020, 1, 1, tzinfo=UTC)
    next_id = 1
    for record_id, count, who in ((big_id, messages, "big"), (small_id, 50, "small")):
        for chunk in range(0, count, 2000):
            n = min(2000, count - chunk)
            rows = range(next_id, next_id + n)
            with transaction(app.sessions) as session:
                session.execute(
                    insert(Message),
                    [
                        {
                            "id": i,
                            "company_id": company_id,
                            "identity": f"m{i}@bench",
                            "message_id": f"m{i}@bench",
                            "subject": f"Message {i} about the order",
                            "date_utc": start + timedelta(minutes=i),
                            "from_address": f"{who}@client.example",
                            "to_addresses": ["ann@bench.example"],
                            "direction": "inbound",
                            "text_body": "Hello " * 200,
                            "html_body": "<p>Hello</p>" * 100,
                            "references": [f"m{i - i % 5}@bench"] if i % 5 else [],
                        }
                        for i in rows
                    ],
                )
                session.execute(
                    insert(MessageCopy),
                    [
                        {
                            "message_id": i,
                            "mailbox_id": box_id,
                            "folder": "INBOX",
                            "uidvalidity": 1,
                            "uid": i,
                        }
                        for i in rows
                    ],
                )
                session.execute(
                    insert(MessageAddress),
                    [
                        {"message_id": i, "company_id": company_id, "role": role, "address": addr}
                        for i in rows
                        for role, addr in (
                            ("from", f"{who}@client.example"),
                            ("to", "ann@bench.example"),
                        )
                    ],
                )
                session.execute(
                    insert(MessageLink),
                    [
                        {
                            "message_id": i,
                            "record_id": record_id,
                            "company_id": company_id,
                            "reason": "address:main",
                        }
                        for i in rows
                    ],
                )
            next_id += n
    return big_id, small_id


def timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} ms   p95 {p95(values):7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    settings = Settings(
        data_dir=data,
        database_url=args.pg or f"sqlite:///{data / 'm.sqlite3'}",
        secret_key_b64=encode_key(new_key()),
    )
    app = open_app(settings)
    t0 = time.perf_counter()
    big, small = generate(app, messages=args.messages)
    print(
        f"generated {args.messages} + 50 messages in {time.perf_counter() - t0:.1f} s "
        f"({app.engine.dialect.name})"
    )
    figures: dict[str, dict[str, float]] = {}
    with TestClient(create_web_app(app)) as client:
        token = client.get("/signin").text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post(
            "/signin",
            data={"email": "ann@bench.example", "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "http://testserver"},
        )
        for record_id, label in (
            (small, "baseline (50 messages)"),
            (big, f"big ({args.messages})"),
        ):
            page = client.get(f"/records/contact/{record_id}")
            assert page.status_code == 200 and page.text.count('class="entry') == 50
            client.get(f"/records/contact/{record_id}")  # warm
            page_ms = [
                float(
                    client.get(f"/records/contact/{record_id}")
                    .headers["server-timing"]
                    .split("dur=")[1]
                )
                for _ in range(args.runs)
            ]  # the app's own Server-Timing: server time, without the test client's overhead
            with app.sessions() as session:
                owner = session.scalars(select(User).where(User.email == "ann@bench.example")).one()
                user = access.viewer_for(session, owner)
                record = session.get(Record, record_id)
                query_ms = timed(
                    lambda s=session, rec=record, u=user: access.visible_timeline_page(
                        s, viewer=u, record=rec, limit=50
                    ),
                    args.runs,
                )
            figures[label] = {
                "page_ms_median": statistics.median(page_ms),
                "page_ms_p95": p95(page_ms),
                "query_ms_median": statistics.median(query_ms),
                "query_ms_p95": p95(query_ms),
            }
            print(f"{label:24} page  {summary(page_ms)}")
            print(f"{label:24} query {summary(query_ms)}")
            if record_id == small:
                base_page, base_query = statistics.median(page_ms), statistics.median(query_ms)
            else:
                print(
                    f"ratio big/baseline: page {statistics.median(page_ms) / base_page:.2f}x, "
                    f"query {statistics.median(query_ms) / base_query:.2f}x"
                )
    write_result(
        f"record-page-{app.engine.dialect.name}",
        {"messages": args.messages, "runs": args.runs, "figures": figures},
    )
    app.close()


if __name__ == "__main__":
    main()
