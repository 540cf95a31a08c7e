"""Changing one's password (issue 11, item 3): it needs the current password, signs every
other session out but keeps this one, and revokes the API tokens only when asked to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.crm.companies import get_user
from mailroom.security import auth
from mailroom.security.passwords import verify_password
from mailroom.web.app import create_web_app
from tests.conftest_web import PASSWORD, Tenant, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN

NEW = "a-brand-new-password"


@pytest.fixture
def other(sqlite_app: App, fast_hashing: None) -> Iterator[TestClient]:
    """A second browser."""
    with TestClient(create_web_app(sqlite_app)) as client:
        yield client


def signed_in(client: TestClient) -> bool:
    return client.get("/account", follow_redirects=False).status_code == 200


def change(client: TestClient, csrf: str, current: str, new: str, **extra: str) -> object:
    form = {"csrf_token": csrf, "current_password": current, "password": new, **extra}
    return client.post("/account/password", data=form, headers=ORIGIN, follow_redirects=False)


def api_works(web: TestClient, tenant: Tenant) -> bool:
    headers = {"Authorization": f"Bearer {tenant.member_token}"}
    return web.get("/api/v1/mailboxes", headers=headers).status_code == 200


def test_password_change_needs_the_current_password_and_keeps_this_session_only(
    web: TestClient, other: TestClient, sqlite_app: App
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(web, tenant.member)
    sign_in(other, tenant.member)

    wrong = change(web, csrf, "not-the-password", NEW)
    assert wrong.status_code == 422  # type: ignore[attr-defined]
    assert "current password is not right" in wrong.text  # type: ignore[attr-defined]
    missing = web.post(
        "/account/password",
        data={"csrf_token": csrf, "password": NEW},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert missing.status_code == 422
    assert signed_in(web) and signed_in(other)

    done = change(web, csrf, PASSWORD, NEW)
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert done.headers["location"] == "/account?notice=password-saved"  # type: ignore[attr-defined]
    assert signed_in(web)  # this session stays
    assert not signed_in(other)  # every other one ends
    assert api_works(web, tenant)  # tokens stay unless asked
    sign_in(other, tenant.member, NEW)


def test_password_change_revokes_the_api_tokens_when_ticked(
    web: TestClient, other: TestClient, sqlite_app: App
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(web, tenant.member)
    sign_in(other, tenant.member)
    assert api_works(web, tenant)
    done = change(web, csrf, PASSWORD, NEW, revoke_tokens="true")
    assert done.headers["location"].endswith("password-saved-tokens-revoked")  # type: ignore[attr-defined]
    assert not api_works(web, tenant)
    assert signed_in(web) and not signed_in(other)
    assert "Also revoke all my API tokens" in web.get("/account").text


def test_wrong_current_passwords_are_rate_limited_like_sign_ins(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(web, tenant.member)
    for _ in range(auth.MAX_FAILURES):
        assert change(web, csrf, "guess-guess", NEW).status_code == 422  # type: ignore[attr-defined]
    blocked = change(web, csrf, PASSWORD, NEW)
    assert "Too many wrong passwords" in blocked.text  # type: ignore[attr-defined]
    with sqlite_app.sessions() as session:  # unchanged; sign-in is paused too (same count)
        user = get_user(session, tenant.member)
        assert user.password_hash and verify_password(user.password_hash, PASSWORD)
