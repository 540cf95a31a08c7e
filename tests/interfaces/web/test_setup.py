"""First run: the one-time /setup page makes the first company, its domains and admin,
signs them in, and is gone afterwards (issue 13, item 10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Company, User
from mailroom.services.setup import FirstRun
from mailroom.web.app import create_web_app
from tests.conftest_web import csrf_of, seed_tenant


@pytest.fixture
def first_run() -> FirstRun:
    return FirstRun()


@pytest.fixture
def fresh(sqlite_app: App, fast_hashing: None, first_run: FirstRun) -> Iterator[TestClient]:
    with TestClient(create_web_app(sqlite_app, first_run=first_run)) as client:
        yield client


def submit(client: TestClient, token: str, **fields: str) -> object:
    csrf = csrf_of(client.get(f"/setup?token={token}").text)
    data = {
        "token": token,
        "company": "Acme",
        "domains": "acme.example, acme-mail.example",
        "name": "Ann Admin",
        "email": "ann@acme.example",
        "password": "a-long-password",
        "csrf_token": csrf,
        **fields,
    }
    return client.post(
        "/setup",
        data=data,
        headers={"Origin": str(client.base_url).rstrip("/")},
        follow_redirects=False,
    )


def test_setup_creates_company_domains_and_admin_signs_in_and_works_once(
    fresh: TestClient, first_run: FirstRun, sqlite_app: App
) -> None:
    token = first_run.issue()
    response = submit(fresh, token)
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/records"  # type: ignore[attr-defined]
    page = fresh.get("/records")
    assert page.status_code == 200 and "ann@acme.example" in page.text
    with sqlite_app.sessions() as session:
        company = session.scalars(select(Company)).one()
        assert company.name == "Acme"
        assert sorted(d.domain for d in company.domains) == ["acme-mail.example", "acme.example"]
        user = session.scalars(select(User)).one()
        assert (user.email, user.name, user.role) == ("ann@acme.example", "Ann Admin", "admin")
        assert user.password_hash and "a-long-password" not in user.password_hash
    # The token is spent, and setup is closed for any token once a user exists.
    assert fresh.get(f"/setup?token={token}").status_code == 404
    fresh.cookies.clear()
    assert fresh.get(f"/setup?token={first_run.issue()}").status_code == 404


def test_the_sign_in_page_points_to_the_setup_address_only_while_no_user_exists(
    fresh: TestClient, first_run: FirstRun
) -> None:
    assert "no user yet" in fresh.get("/signin").text
    submit(fresh, first_run.issue())
    fresh.cookies.clear()
    assert "no user yet" not in fresh.get("/signin").text


def test_a_wrong_token_is_404_and_a_refused_form_keeps_the_token(
    fresh: TestClient, first_run: FirstRun, sqlite_app: App
) -> None:
    token = first_run.issue()
    assert fresh.get("/setup").status_code == 404
    assert fresh.get("/setup?token=guess").status_code == 404
    refused = submit(fresh, token, email="ann@elsewhere.example")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "not in Acme" in refused.text  # type: ignore[attr-defined]
    short = submit(fresh, token, password="short")
    assert short.status_code == 422  # type: ignore[attr-defined]
    with sqlite_app.sessions() as session:
        assert session.scalars(select(Company)).first() is None  # nothing half-made
    assert submit(fresh, token).status_code == 303  # type: ignore[attr-defined]


def test_setup_needs_the_forms_csrf_token(fresh: TestClient, first_run: FirstRun) -> None:
    token = first_run.issue()
    fresh.get(f"/setup?token={token}")
    response = fresh.post(
        "/setup",
        data={
            "token": token,
            "company": "Acme",
            "domains": "acme.example",
            "email": "ann@acme.example",
            "password": "a-long-password",
            "csrf_token": "forged",
        },
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert first_run.valid(token)


def test_no_setup_page_on_an_install_with_users(sqlite_app: App, fast_hashing: None) -> None:
    seed_tenant(sqlite_app, "Alpha")
    first_run = FirstRun()
    token = first_run.issue()
    with TestClient(create_web_app(sqlite_app, first_run=first_run)) as client:
        assert client.get(f"/setup?token={token}").status_code == 404
    with TestClient(create_web_app(sqlite_app)) as client:
        assert client.get(f"/setup?token={token}").status_code == 404
