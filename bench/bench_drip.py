"""Other companies' request latency while a mail server drips its answers, as ratios.

    .venv/bin/python bench/bench_drip.py [--requests 200] [--flows 4] [--database-url URL]

Issue 11, item 10: a server that dripped one byte every 5 s held the SQLite write lock
through a mailbox connect, and another company's `GET /api/v1/mailboxes` failed with
"database is locked" after 30 s. This bench serves Mailroom's web app with uvicorn on
127.0.0.1 (a fresh SQLite data dir, or --database-url for PostgreSQL) and measures
company Beta's requests — `GET /api/v1/mailboxes` (API token) and `GET /mailboxes` (the
dashboard page, session cookie) — one after another on one keep-alive connection, in
three phases of the same run:

1. `idle`: nothing else happens;
2. `drip`: company Alpha's member keeps --flows requests stuck on mailbox hosted by a
   scripted server (mailroom_testing.hostile_server) that answers LOGIN one byte every
   200 ms: half "test connection" (`POST /api/v1/mailboxes/{id}/test`), half a new
   connect (`POST /api/v1/mailboxes`), each re-sent as soon as it ends;
3. `idle again`, after the hostile server is closed.

The figures are p50 and p99 of each request kind per phase, and the ratio of each phase
to the idle phases' pooled samples. A do-nothing thread wakes every 5 ms in all three
phases (`ticking`: an all-blocked process answered 5x slower on this machine, which
would flatter the drip phase). Every Beta request must answer 200 (a lock
error or a timeout stops the bench). Writes bench/results/drip-<sqlite|postgresql>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import uvicorn  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench._meta import write_result  # noqa: E402
from mailroom.app import App, open_app  # noqa: E402
from mailroom.config import Settings  # noqa: E402
from mailroom.crm.companies import add_company, add_user  # noqa: E402
from mailroom.db.engine import transaction  # noqa: E402
from mailroom.db.models import User  # noqa: E402
from mailroom.mailboxes.store import add_mailbox  # noqa: E402
from mailroom.security.auth import create_api_token, start_session  # noqa: E402
from mailroom.security.secrets import encode_key, new_key  # noqa: E402
from mailroom.web.app import create_web_app  # noqa: E402
from mailroom.web.deps import SESSION_COOKIE  # noqa: E402
from mailroom_testing.hostile_server import Answer, HostileServer  # noqa: E402

TIMEOUT = 30.0


def dripping_login() -> Answer:
    """LOGIN answered one byte every 200 ms until the client hangs up (each LOGIN is
    reported on stdout, for the parent process)."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        print("LOGIN", flush=True)
        while True:
            time.sleep(0.2)
            yield b"*"

    return answer


def request(url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, str]:
    """(status, text) of one request."""
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as failed:
        return failed.code, failed.read().decode()


def serve_hostile() -> None:
    """The child process: the dripping server; prints its port, then each LOGIN; runs
    until its stdin closes."""
    server = HostileServer()
    server.on("LOGIN", dripping_login())
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()


@contextmanager
def hostile_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The dripping server in a process of its own (its threads sleep and wake; see
    `ticking`)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-hostile"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    port = int(child.stdout.readline())
    try:
        yield child, port
    finally:
        child.stdin.close()
        child.wait(10)


@contextmanager
def ticking(every: float = 0.005) -> Iterator[None]:
    """A thread that wakes every `every` s and does nothing, in every phase.

    On this machine a process whose threads all block answered each request in ~35 ms,
    and the same process with any thread waking every 200 ms in ~6 ms (the kernel's CPU
    scheduling and idle states, not Mailroom: an empty `time.sleep` loop does it). A
    dripping server wakes Mailroom's reading thread at every byte, so without this the
    drip phase would look 5x faster than idle. With it, both phases are measured awake.
    """
    stop_ticking = threading.Event()

    def tick() -> None:
        while not stop_ticking.wait(every):
            pass

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop_ticking.set()
        thread.join()


@contextmanager
def served(app: App) -> Iterator[str]:
    """The web app on a free port of 127.0.0.1, in a thread."""
    config = uvicorn.Config(create_web_app(app), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def seed(app: App, port: int) -> dict[str, object]:
    """Alpha (whose member has a mailbox on 127.0.0.1:`port`) and Beta; tokens, cookie, ids."""
    with transaction(app.sessions) as session:
        out: dict[str, object] = {}
        for name in ("Alpha", "Beta"):
            slug = name.lower()
            company = add_company(session, name=name, domains=[f"{slug}.example"])
            member = add_user(session, company=company, email=f"member@{slug}.example")
            box = add_mailbox(
                session,
                app.secrets,
                user=member,
                host="127.0.0.1" if name == "Alpha" else "imap.test",
                port=port if name == "Alpha" else 993,
                password="pw-123",
                security="none",
            )
            out[f"{slug}_token"] = create_api_token(session, user=member, name="bench")[0]
            out[f"{slug}_box"] = box.id
        beta = session.scalars(select(User).where(User.email == "member@beta.example")).one()
        out["beta_cookie"] = start_session(session, user=beta).cookie
    return out


class Client:
    """One keep-alive HTTP/1.1 connection with TCP_NODELAY, as a browser or API client
    holds (a fresh connection per request measured the kernel's delayed ACKs, 40 ms)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, str]:
        """(status, text) of one GET on the kept connection."""
        if self.conn.sock is None:
            self.conn.connect()
            assert self.conn.sock is not None
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.request("GET", path, headers=headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read().decode()


def beta_round(client: Client, seeded: dict[str, object], samples: dict[str, list[float]]) -> None:
    """One API request and one page request of Beta's, timed; each must answer 200."""
    kinds = {
        "GET /api/v1/mailboxes": (
            "/api/v1/mailboxes",
            {"Authorization": f"Bearer {seeded['beta_token']}"},
        ),
        "GET /mailboxes (page)": (
            "/mailboxes",
            {"Cookie": f"{SESSION_COOKIE}={seeded['beta_cookie']}"},
        ),
    }
    for kind, (where, headers) in kinds.items():
        start = time.perf_counter()
        status, text = client.get(where, headers)
        samples.setdefault(kind, []).append(time.perf_counter() - start)
        if status != 200 or "locked" in text:
            raise SystemExit(f"{kind} answered {status}: {text[:300]}")


def alpha_flows(
    url: str, seeded: dict[str, object], child: subprocess.Popen[str], port: int, flows: int
) -> None:
    """Keep `flows` of Alpha's requests stuck on the dripping server until it closes."""
    token = {"Authorization": f"Bearer {seeded['alpha_token']}"}
    json_headers = {**token, "Content-Type": "application/json"}
    connect = json.dumps(
        {"host": "127.0.0.1", "port": port, "security": "none", "password": "pw-123456"}
    ).encode()

    def loop(n: int) -> None:
        while not stop.is_set():
            if n % 2:
                request(f"{url}/api/v1/mailboxes", json_headers, connect)
            else:
                request(f"{url}/api/v1/mailboxes/{seeded['alpha_box']}/test", token, b"")

    for n in range(flows):
        threading.Thread(target=loop, args=(n,), daemon=True).start()
    assert child.stdout is not None
    for _ in range(flows):  # each flow is stuck in its LOGIN
        if child.stdout.readline().strip() != "LOGIN":
            raise SystemExit("Alpha's requests never reached the dripping server")


stop = threading.Event()


def quantiles(values: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": statistics.median(values) * 1000, "p99_ms": cuts[98] * 1000}


def main() -> None:
    """Run the three phases, print the table, write the result file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="Beta's rounds per phase")
    parser.add_argument("--flows", type=int, default=4, help="Alpha's stuck requests")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--serve-hostile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hostile:
        serve_hostile()
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        url_db = args.database_url or f"sqlite:///{data_dir / 'mailroom.sqlite3'}"
        settings = Settings(
            data_dir=data_dir,
            database_url=url_db,
            secret_key_b64=encode_key(new_key()),
            allow_private_hosts=True,
        )
        app = open_app(settings)
        phases: dict[str, dict[str, list[float]]] = {"idle": {}, "drip": {}, "idle again": {}}
        with hostile_process() as (child, port), served(app) as url, ticking():
            seeded = seed(app, port)
            beta = Client(url)
            for _ in range(20):  # warm-up: imports, caches, the first session lookups
                beta_round(beta, seeded, {})
            for _ in range(args.requests):
                beta_round(beta, seeded, phases["idle"])
            alpha_flows(url, seeded, child, port, args.flows)
            for _ in range(args.requests):
                beta_round(beta, seeded, phases["drip"])
            stop.set()
            assert child.stdin is not None
            child.stdin.close()  # the dripping server closes: Alpha's requests end
            child.wait(10)
            for _ in range(args.requests):
                beta_round(beta, seeded, phases["idle again"])
        app.close()
    report(phases, args, url_db)


def report(
    phases: dict[str, dict[str, list[float]]], args: argparse.Namespace, url_db: str
) -> None:
    """Print the table and write bench/results/drip-<database>.json."""
    database = "postgresql" if url_db.startswith("postgresql") else "sqlite"
    rows: dict[str, dict[str, object]] = {}
    print(
        f"{'request':<24}{'phase':<12}{'p50 ms':>9}{'p99 ms':>9}{'ratio p50':>11}{'ratio p99':>11}"
    )
    for kind in phases["idle"]:
        idle = quantiles(phases["idle"][kind] + phases["idle again"][kind])
        row: dict[str, object] = {"idle (pooled)": idle}
        for phase in phases:
            figures = quantiles(phases[phase][kind])
            ratio = {k: figures[k] / idle[k] for k in ("p50_ms", "p99_ms")}
            row[phase] = {**figures, "ratio_to_pooled_idle": ratio}
            print(
                f"{kind:<24}{phase:<12}{figures['p50_ms']:>9.1f}{figures['p99_ms']:>9.1f}"
                f"{ratio['p50_ms']:>11.2f}{ratio['p99_ms']:>11.2f}"
            )
        rows[kind] = row
    write_result(
        f"drip-{database}",
        {
            "database": database,
            "requests_per_phase": args.requests,
            "alpha_flows": args.flows,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
