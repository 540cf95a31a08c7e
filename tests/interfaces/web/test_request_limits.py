"""Request bodies are capped before they are read (issue 11 item 12): JSON at 1 MB, forms
small, a signed-in send at the outbox's largest message; a form from another site or
without its cookie is refused before its body is parsed. web/limits.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.web.limits import FORM_LIMIT, JSON_LIMIT, send_limit
from tests.conftest_web import LiveServer, Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}


def test_a_json_body_over_1_mb_is_refused_with_413_whoever_sends_it(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    rule = {"name": "big", "action": "ignore", "conditions": {"subject_contains": "x"}}
    big = b'{"name": "big", "description": "' + b"x" * JSON_LIMIT + b'"}'
    for headers in ({"Authorization": f"Bearer {alpha.admin_token}"}, {}):
        answer = web.post(
            "/api/v1/rules", content=big, headers=headers | {"Content-Type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"] == "too-large"
        assert "larger than the 1 MB" in answer.json()["message"]
    ok = web.post(
        "/api/v1/rules", json=rule, headers={"Authorization": f"Bearer {alpha.admin_token}"}
    )
    assert ok.status_code == 201, ok.text  # a normal body still passes


def test_a_streamed_body_without_length_is_cut_off_at_the_cap(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "description": "'
        for _ in range(2 * JSON_LIMIT // 65536):
            yield b"x" * 65536
        yield b'"}'

    answer = web.post(
        "/api/v1/rules",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {alpha.admin_token}",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 413 and answer.json()["error"] == "too-large"


def test_a_page_form_over_the_form_cap_is_refused_but_a_send_may_carry_attachments(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    form = {"csrf_token": csrf, "name": "big", "action": "ignore", "description": "x" * FORM_LIMIT}
    answer = web.post("/admin/rules", data=form, headers=ORIGIN)
    assert answer.status_code == 413 and "larger than the 64 KB" in answer.text
    # /compose takes attachments up to the outbox's size: a 1 MB one is not cut off by the cap
    attachment = ("notes.bin", b"\0" * (1024 * 1024), "application/octet-stream")
    sent = web.post(
        "/compose",
        data={"csrf_token": csrf, "mailbox": "999999", "to": "jo@client.example"},
        files=[("attachment", attachment)],
        headers=ORIGIN,
    )
    assert sent.status_code != 413, sent.text
    assert send_limit() > 35 * 1024 * 1024  # Microsoft 365 takes 35 MB messages


def test_forms_from_another_site_or_without_a_session_are_refused_before_parsing(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    foreign = web.post(
        "/admin/rules", data={"name": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    web.cookies.clear()
    signin = web.post("/signin", data={"email": alpha.admin, "password": "x"}, headers=ORIGIN)
    assert signin.status_code == 403 and "security token" in signin.text
    anonymous = web.post("/admin/rules", data={"name": "x"}, headers=ORIGIN, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/signin"


def _answer_to_headers_only(url: str, request: bytes) -> bytes:
    """Send only a request's headers, then read what the server answers (guarded by a
    generous socket timeout: a server that waits for the body never answers)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_an_unauthenticated_50_mb_signin_post_is_refused_after_reading_only_the_headers(
    live_server: LiveServer, sqlite_app: App
) -> None:
    """Formerly the whole multipart body was spooled to disk before the CSRF check."""
    host = urlsplit(live_server.url).netloc
    request = (
        f"POST /signin HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\nCookie: mr_pre=anything\r\n\r\n"
    ).encode()
    answer = _answer_to_headers_only(live_server.url, request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    json_request = (
        f"POST /api/v1/rules HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {400 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = _answer_to_headers_only(live_server.url, json_request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
