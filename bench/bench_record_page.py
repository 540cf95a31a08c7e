"""Benchmark: the first page of a record with 10,000 messages against one with 50, server time.

Generates one company with a contact holding N messages (default 10,000; each with a copy,
two participants and a link) and a baseline contact with 50, on SQLite (a temporary data
dir) and on PostgreSQL (a temporary database made through `--pg-admin`, dropped after), and
times in the same run, for the big record and the baseline record alternately (so a change
in the machine's load hits both alike):

- `GET /records/contact/{id}` (the record page) through the whole app (session lookup,
  access checks, the timeline's queries, Jinja rendering), read from the app's own
  `Server-Timing` header (server time, without the test client's overhead),
- `GET /api/v1/records/contact/{id}/timeline` (the timeline API, Bearer token), the same way,
- `GET /records/contact/{id}/activity` (the record's stream of mail, notes and tasks),
- `crm.access.visible_timeline_page` alone (the queries),

first with the company transparent, then strict (every message filtered per viewer). It
prints median and p95 in ms and the ratio big/baseline of the medians (the issue's target:
at most 1.2x), the load average before and after (`uptime`: the machine is shared; compare
ratios from one run), and writes bench/results/record-page-<dialect>.json with the run's
commit and package versions (bench/_meta.py).

Run:  .venv/bin/python bench/bench_record_page.py [--messages 10000] [--runs 60]
          [--db sqlite,postgresql] [--pg-admin postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._meta import write_result
from bench._pg import temporary_pg
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
from mailroom.db.web_models import DEFAULT_RETENTION_DAYS, CompanyPrivacy
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.auth import create_api_token
from mailroom.security.secrets import encode_key, new_key
from mailroom.web.app import create_web_app

PASSWORD = "bench-password-1"


def generate(app: App, *, messages: int) -> tuple[int, int, int]:
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
    return company_id, big_id, small_id


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} ms   p95 {p95(values):7.2f} ms"


def server_ms(client: TestClient, url: str, headers: dict[str, str] | None = None) -> float:
    """The app's own Server-Timing for one GET (server time, without the client's)."""
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200, (url, response.status_code)
    return float(response.headers["server-timing"].split("dur=")[1])


def query_ms(app: App, record_id: int) -> float:
    """`visible_timeline_page` alone (a fresh session, as a request has)."""
    with app.sessions() as session:
        owner = session.scalars(select(User).where(User.email == "ann@bench.example")).one()
        viewer = access.viewer_for(session, owner)
        record = session.get(Record, record_id)
        assert record is not None
        t0 = time.perf_counter()
        access.visible_timeline_page(session, viewer=viewer, record=record, limit=50)
        return (time.perf_counter() - t0) * 1000


def measure(
    app: App, client: TestClient, token: str, ids: dict[str, int], runs: int
) -> dict[str, dict[str, list[float]]]:
    """Each kind of request for each record, alternating big and baseline every run."""
    bearer = {"Authorization": f"Bearer {token}"}
    kinds: dict[str, Callable[[int], float]] = {
        "page": lambda rid: server_ms(client, f"/records/contact/{rid}"),
        "api": lambda rid: server_ms(client, f"/api/v1/records/contact/{rid}/timeline", bearer),
        "activity": lambda rid: server_ms(client, f"/records/contact/{rid}/activity"),
        "query": lambda rid: query_ms(app, rid),
    }
    times: dict[str, dict[str, list[float]]] = {k: {n: [] for n in ids} for k in kinds}
    for rid in ids.values():  # warm every path once, and check the page shows 50 entries
        page = client.get(f"/records/contact/{rid}")
        assert page.status_code == 200 and page.text.count('class="entry') == 50
        api = client.get(f"/api/v1/records/contact/{rid}/timeline", headers=bearer)
        assert len(api.json()["items"]) == 50
        for fn in kinds.values():
            fn(rid)
    for _ in range(runs):
        for kind, fn in kinds.items():
            for name, rid in ids.items():
                times[kind][name].append(fn(rid))
    return times


def set_strict(app: App, company_id: int) -> None:
    with transaction(app.sessions) as session:
        session.add(
            CompanyPrivacy(
                company_id=company_id,
                visibility="strict",
                retention_days=DEFAULT_RETENTION_DAYS,
                retention_enabled=False,
            )
        )


def run_one(url: str, data: Path, *, messages: int, runs: int) -> dict[str, Any]:
    """Generate, then measure transparent and strict; returns the figures and ratios."""
    settings = Settings(data_dir=data, database_url=url, secret_key_b64=encode_key(new_key()))
    app = open_app(settings)
    t0 = time.perf_counter()
    company_id, big, small = generate(app, messages=messages)
    dialect = app.engine.dialect.name
    print(f"{dialect}: generated {messages} + 50 messages in {time.perf_counter() - t0:.1f} s")
    with transaction(app.sessions) as session:
        owner = session.scalars(select(User).where(User.email == "ann@bench.example")).one()
        token, _row = create_api_token(session, user=owner, name="bench")
    out: dict[str, Any] = {"figures": {}, "ratios": {}}
    ids = {"baseline": small, "big": big}
    with TestClient(create_web_app(app)) as client:
        csrf = client.get("/signin").text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post(
            "/signin",
            data={"email": "ann@bench.example", "password": PASSWORD, "csrf_token": csrf},
            headers={"Origin": "http://testserver"},
        )
        for mode in ("transparent", "strict"):
            if mode == "strict":
                set_strict(app, company_id)
            times = measure(app, client, token, ids, runs)
            for kind, per in times.items():
                for name, values in per.items():
                    label = f"{dialect} {mode} {kind} {name}"
                    out["figures"][f"{mode}/{kind}/{name}"] = {
                        "median_ms": statistics.median(values),
                        "p95_ms": p95(values),
                    }
                    print(f"{label:42} {summary(values)}")
                ratio = statistics.median(per["big"]) / statistics.median(per["baseline"])
                out["ratios"][f"{mode}/{kind}"] = round(ratio, 3)
                print(f"{dialect} {mode} {kind}: ratio {messages}/50 = {ratio:.2f}x")
    app.close()
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument(
        "--pg-admin",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to create and drop a database",
    )
    args = parser.parse_args()
    before = uptime()
    print(f"load before: {before}")
    results: dict[str, dict[str, Any]] = {}
    for db in args.db.split(","):
        data = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
        if db == "sqlite":
            results[db] = run_one(
                f"sqlite:///{data / 'm.sqlite3'}", data, messages=args.messages, runs=args.runs
            )
        else:
            url, drop = temporary_pg(args.pg_admin)
            try:
                results[db] = run_one(url, data, messages=args.messages, runs=args.runs)
            finally:
                drop()
    after = uptime()
    print(f"load after:  {after}")
    print("ratios (big/baseline medians; target <= 1.2x):")
    for db, result in results.items():
        print(f"  {db:11} " + "  ".join(f"{k} {v:.2f}x" for k, v in result["ratios"].items()))
    for db, result in results.items():
        write_result(
            f"record-page-{db}",
            {
                "messages": args.messages,
                "runs": args.runs,
                "uptime_before": before,
                "uptime_after": after,
                **result,
            },
        )


if __name__ == "__main__":
    main()
