"""Dashboard pages doing what they say: link/unlink by hand, settings, tokens, sharing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Company, Mailbox, MessageLink
from mailroom.db.web_models import CompanyPrivacy
from tests.conftest_web import Tenant, sign_in

ORIGIN = {"Origin": "http://testserver"}


def post(web: TestClient, url: str, csrf: str, **form: str) -> int:
    answer = web.post(
        url, data={"csrf_token": csrf, **form}, headers=ORIGIN, follow_redirects=False
    )
    return answer.status_code


def test_link_and_unlink_by_hand_from_the_message_page(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    first = alpha.message_ids[0]
    assert post(web, f"/messages/{first}/links", csrf, record=f"account:{alpha.account_id}") == 303
    page = web.get(f"/messages/{first}").text
    assert f'href="/records/account/{alpha.account_id}">Client Alpha</a>' in page
    assert "by hand" in page
    unlink = f"/messages/{first}/links/contact/{alpha.contact_id}/remove"
    assert post(web, unlink, csrf) == 303
    with sqlite_app.sessions() as session:
        linked = set(
            session.scalars(select(MessageLink.record_id).where(MessageLink.message_id == first))
        )
    assert linked == {alpha.account_id}
    assert post(web, f"/messages/{first}/links", csrf, record="nonsense") == 422


def test_admin_saves_privacy_retention_and_mailbox_limit(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    assert "Transparent" in web.get("/admin/settings").text
    form = {"visibility": "strict", "retention_days": "30", "mailbox_limit": "5"}
    assert post(web, "/admin/settings", csrf, **form) == 303
    with sqlite_app.sessions() as session:
        privacy = session.scalars(select(CompanyPrivacy)).one()
        assert (privacy.visibility, privacy.retention_days, privacy.retention_enabled) == (
            "strict",
            30,
            False,
        )
        assert session.get(Company, alpha.company_id).mailbox_limit == 5  # type: ignore[union-attr]
    bad = web.post(
        "/admin/settings", data={"csrf_token": csrf, **form, "visibility": "open"}, headers=ORIGIN
    )
    assert bad.status_code == 422 and "Fix:" in bad.text


def test_admin_adds_a_user_who_can_sign_in(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    assert (
        post(
            web,
            "/admin/users",
            csrf,
            email="new@alpha.example",
            password="new-password-1",
            role="member",
        )
        == 303
    )
    again = web.post(
        "/admin/users",
        data={"csrf_token": csrf, "email": "new@alpha.example", "password": "new-password-1"},
        headers=ORIGIN,
    )
    assert again.status_code == 422 and "already exists" in again.text
    web.cookies.clear()
    sign_in(web, "new@alpha.example", "new-password-1")
    assert "Admin" not in web.get("/records").text.split("</nav>")[0]


def test_api_token_from_the_account_page_is_shown_once_and_works(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    page = web.post("/account/tokens", data={"csrf_token": csrf, "name": "script"}, headers=ORIGIN)
    token = page.text.split('<code class="token">')[1].split("</code>")[0]
    assert token.startswith("mr_")
    assert token not in web.get("/account").text
    answer = web.get("/api/v1/records", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


def test_owner_sets_sharing_and_disconnects_keeping_mail(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    assert post(web, f"/mailboxes/{alpha.mailbox_id}/sharing", csrf, level="subject") == 303
    assert 'value="subject" selected' in web.get("/mailboxes").text
    assert post(web, f"/mailboxes/{alpha.mailbox_id}/disconnect", csrf, mail="keep") == 303
    with sqlite_app.sessions() as session:
        assert session.get(Mailbox, alpha.mailbox_id) is None
    items = web.get(
        f"/api/v1/records/contact/{alpha.contact_id}/timeline",
        headers={"Authorization": f"Bearer {alpha.member_token}"},
    ).json()["items"]
    assert len(items) == 3


def test_record_search_answers_htmx_with_rows_only(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    sign_in(web, alpha.member)
    rows = web.get("/records?q=client-alpha.example", headers={"HX-Request": "true"}).text
    assert "<html" not in rows and "Client Alpha" in rows and "Jo Alpha" in rows
    page = web.get(f"/records/contact/{alpha.contact_id}").text
    assert page.count('class="entry') == 3 and ">their address<" in page
    assert "→ sent" in page and "← received" in page


def test_a_mailbox_over_gmails_download_limit_shows_paused_with_its_resume_time(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    from datetime import UTC, datetime

    from mailroom.db.engine import transaction
    from mailroom.errors import ProtocolError
    from mailroom.sync.health import record_failure

    alpha, _ = two_tenants
    said = "rejected UID FETCH: [OVERQUOTA] Account exceeded command or bandwidth limits."
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, alpha.mailbox_id)
        assert mailbox is not None
        record_failure(
            session, mailbox, ProtocolError(said), now=datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
        )
    sign_in(web, alpha.admin)
    page = web.get("/mailboxes").text
    assert 'class="badge paused"' in page
    assert "Paused: Gmail&#39;s daily download limit; resumes at 2026-12-01 10:30 UTC" in page
