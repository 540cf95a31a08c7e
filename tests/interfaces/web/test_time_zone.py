"""Times in the viewer's time zone (issue 13, item 12): a user setting (account page,
`PATCH /api/v1/me`), the browser's own zone saved once when none is chosen, every page
time shown in it, API answers unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.models import Message, User
from tests.conftest_web import Tenant, sign_in


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def zone_of(app: App, email: str) -> str | None:
    with app.sessions() as session:
        return session.scalars(select(User.time_zone).where(User.email == email)).one()


def test_the_me_answer_carries_the_time_zone_and_an_unknown_zone_is_a_422_naming_it(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    me = web.get("/api/v1/me", headers=auth(alpha.member_token))
    assert me.status_code == 200 and me.json()["email"] == alpha.member
    assert me.json()["time_zone"] is None
    bad = web.patch(
        "/api/v1/me", json={"time_zone": "Mars/Olympus"}, headers=auth(alpha.member_token)
    )
    assert bad.status_code == 422 and "time_zone" in bad.json()["message"]
    assert "Europe/Paris" in bad.json()["hint"]
    good = web.patch(
        "/api/v1/me", json={"time_zone": "Asia/Tokyo"}, headers=auth(alpha.member_token)
    )
    assert good.status_code == 200 and good.json()["time_zone"] == "Asia/Tokyo"
    assert web.get("/api/v1/me", headers=auth(alpha.admin_token)).json()["time_zone"] is None


def test_the_browsers_zone_is_saved_once_and_never_overrides_a_chosen_zone(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    csrf = sign_in(web, alpha.admin)
    origin = {"Origin": str(web.base_url).rstrip("/")}
    page = web.get("/records").text
    assert f'data-detect-time-zone="{csrf}"' in page  # app.js reports the browser's zone
    detected = {"csrf_token": csrf, "time_zone": "America/New_York", "detected": "true"}
    assert web.post("/account/time-zone", data=detected, headers=origin).status_code == 204
    assert zone_of(sqlite_app, alpha.admin) == "America/New_York"
    assert "data-detect-time-zone" not in web.get("/records").text
    chosen = {"csrf_token": csrf, "time_zone": "Europe/Paris"}
    saved = web.post("/account/time-zone", data=chosen, headers=origin, follow_redirects=False)
    assert saved.status_code == 303 and "time-zone-saved" in saved.headers["location"]
    detected["time_zone"] = "Asia/Tokyo"  # another browser later: the choice stays
    assert web.post("/account/time-zone", data=detected, headers=origin).status_code == 204
    assert zone_of(sqlite_app, alpha.admin) == "Europe/Paris"
    wrong = web.post(
        "/account/time-zone", data={"csrf_token": csrf, "time_zone": "Nowhere/Land"}, headers=origin
    )
    assert wrong.status_code == 422 and "is not a time zone" in wrong.text
    assert zone_of(sqlite_app, alpha.admin) == "Europe/Paris"


def test_pages_show_times_in_the_viewers_zone_and_the_api_keeps_iso_8601(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _beta = two_tenants
    message_id = alpha.message_ids[0]
    with sqlite_app.sessions() as session:
        stored = session.get(Message, message_id)
        assert stored is not None and stored.date_utc is not None
        when = stored.date_utc.replace(tzinfo=stored.date_utc.tzinfo or UTC)
    api_before = web.get(f"/api/v1/messages/{message_id}", headers=auth(alpha.admin_token)).json()
    for zone in ("UTC", "Asia/Kolkata", "America/Los_Angeles"):
        web.patch("/api/v1/me", json={"time_zone": zone}, headers=auth(alpha.admin_token))
        shown = when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
        sign_in(web, alpha.admin)
        assert shown in web.get(f"/messages/{message_id}").text, zone
        record = web.get(f"/records/contact/{alpha.contact_id}").text
        assert shown in record, zone
        others = [
            when.astimezone(ZoneInfo(z)).strftime("%Y-%m-%d %H:%M")
            for z in ("UTC", "Asia/Kolkata", "America/Los_Angeles")
            if z != zone
        ]
        assert not any(o in record for o in others), zone
    api_after = web.get(f"/api/v1/messages/{message_id}", headers=auth(alpha.admin_token)).json()
    assert api_after == api_before  # the API answers the same whatever the zone


def test_the_localtime_filter_reads_aware_naive_and_iso_times_and_keeps_dates() -> None:
    from datetime import date

    from mailroom.web.templating import local_time

    aware = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert local_time(aware, "Asia/Tokyo") == "2026-12-02 08:30"
    assert local_time(aware.replace(tzinfo=None), "Asia/Tokyo") == "2026-12-02 08:30"
    assert local_time("2026-12-01T23:30:00+01:00", "UTC") == "2026-12-01 22:30"
    assert local_time(aware, None) == local_time(aware, "Not/AZone") == "2026-12-01 23:30"
    assert local_time(date(2026, 12, 1), "Asia/Tokyo") == "2026-12-01"
    assert local_time(None, "UTC") == "" and local_time("soon", "UTC") == "soon"
