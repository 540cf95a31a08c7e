"""Records created, edited, deleted and merged through the API, and records made from an
email (issue 13, items 1 and 2): the contract's routes, shapes and errors (422 naming the
field, 404 outside the caller's company, 409 naming the record that holds a main address),
and the two-company matrix."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.db.models import Message, MessageLink, User
from tests.conftest_web import Tenant
from tests.helpers.matching_kit import ingest, mail

JO = "jo@client-alpha.example"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def links(app: App, record_id: int) -> dict[int, str]:
    with app.sessions() as session:
        return dict(
            session.execute(
                select(MessageLink.message_id, MessageLink.reason).where(
                    MessageLink.record_id == record_id
                )
            ).all()
        )


def user_id(app: App, email: str) -> int:
    with app.sessions() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


def create(web: TestClient, token: str, **body: Any) -> Any:
    return web.post("/api/v1/records", json=body, headers=auth(token))


def test_create_answers_the_record_and_links_its_stored_mail_at_once(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    owner = user_id(sqlite_app, alpha.member)
    answer = create(
        web,
        alpha.admin_token,
        type="lead",
        name="Jo as a lead",
        emails=[{"address": JO.upper()}],
        owner_id=owner,
        fields={"stage": "new", "phone": "+1 555"},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert {"id", "type", "name", "emails", "domains", "owner", "fields"} <= set(body)
    assert body["type"] == "lead" and body["emails"] == [JO]
    assert body["owner"] == {"id": owner, "email": alpha.member, "name": ""}
    assert body["fields"] == {"stage": "new", "phone": "+1 555"}
    assert body["mail"] == {"linked": 3, "queued": 0, "unlinked": 0}
    assert set(links(sqlite_app, body["id"])) == set(alpha.message_ids)
    again = web.get(f"/api/v1/records/lead/{body['id']}", headers=auth(alpha.member_token))
    assert again.json()["owner"]["email"] == alpha.member


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "lead", "name": "X", "emails": [{"address": "not-an-address"}]}, "emails.0"),
        ({"type": "prospect", "name": "X"}, "type"),
        ({"type": "account", "name": "X", "domains": ["no domain"]}, "domains"),
        ({"type": "lead", "name": "X", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    web: TestClient, two_tenants: tuple[Tenant, Tenant], body: dict[str, Any], field: str
) -> None:
    alpha, _ = two_tenants
    answer = web.post("/api/v1/records", json=body, headers=auth(alpha.admin_token))
    assert answer.status_code == 422
    assert answer.json()["error"] == "bad-input"
    assert field in answer.json()["message"]


def test_a_main_address_of_another_record_of_the_same_type_is_409_with_its_id(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    answer = create(
        web, alpha.admin_token, type="contact", name="Jo again", emails=[{"address": JO}]
    )
    assert answer.status_code == 409
    assert f"contact:{alpha.contact_id}" in answer.json()["message"]
    # Another type may hold it: a lead for the same person is fine.
    assert create(web, alpha.admin_token, type="lead", emails=[{"address": JO}]).status_code == 201
    lead = create(
        web, alpha.admin_token, type="contact", name="Pat", emails=[{"address": "pat@p.example"}]
    )
    moved = web.patch(
        f"/api/v1/records/contact/{lead.json()['id']}",
        json={"emails": [{"address": JO}]},
        headers=auth(alpha.admin_token),
    )
    assert moved.status_code == 409 and str(alpha.contact_id) in moved.json()["message"]
    # Held as a secondary address is held too.
    kim = create(
        web,
        alpha.admin_token,
        type="contact",
        name="Kim",
        emails=[{"address": "kim@k.example"}, {"address": "kim.two@k.example"}],
    ).json()
    twin = create(
        web,
        alpha.admin_token,
        type="contact",
        name="Kim 2",
        emails=[{"address": "kim.two@k.example"}],
    )
    assert twin.status_code == 409 and f"contact:{kim['id']}" in twin.json()["message"]


def test_patch_replaces_addresses_and_removes_only_the_links_an_address_made(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    lead = create(web, alpha.admin_token, type="lead", name="Jo", emails=[{"address": JO}]).json()
    by_hand = alpha.message_ids[0]
    linked = web.post(
        f"/api/v1/messages/{by_hand}/links",
        json={"record": f"lead:{lead['id']}"},
        headers=auth(alpha.admin_token),
    )
    assert linked.status_code == 200
    answer = web.patch(
        f"/api/v1/records/lead/{lead['id']}",
        json={"emails": [{"address": "jo.new@elsewhere.example"}], "name": "Jo Renamed"},
        headers=auth(alpha.member_token),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "Jo Renamed" and body["emails"] == ["jo.new@elsewhere.example"]
    assert body["mail"]["unlinked"] == 2
    assert links(sqlite_app, lead["id"]) == {by_hand: "manual"}
    # A partial PATCH leaves what it does not name.
    kept = web.patch(
        f"/api/v1/records/lead/{lead['id']}",
        json={"fields": {"status": "qualified"}},
        headers=auth(alpha.admin_token),
    ).json()
    assert kept["emails"] == ["jo.new@elsewhere.example"] and kept["name"] == "Jo Renamed"
    assert kept["fields"] == {"status": "qualified"}
    # Adding the address back links its mail again.
    back = web.patch(
        f"/api/v1/records/lead/{lead['id']}",
        json={"emails": [{"address": "jo.new@elsewhere.example"}, {"address": JO}]},
        headers=auth(alpha.admin_token),
    ).json()
    assert back["mail"]["linked"] == 2
    assert set(links(sqlite_app, lead["id"])) == set(alpha.message_ids)


def test_patch_turns_a_lead_into_a_contact_keeping_its_mail_but_no_record_into_an_account(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    token = alpha.admin_token
    lead = create(web, token, type="lead", name="Pat", emails=[{"address": "pat@p.example"}]).json()
    lead_jo = create(web, token, type="lead", name="Jo", emails=[{"address": JO}]).json()
    turned = web.patch(
        f"/api/v1/records/lead/{lead['id']}", json={"type": "contact"}, headers=auth(token)
    )
    assert turned.status_code == 200 and turned.json()["type"] == "contact"
    assert web.get(f"/api/v1/records/contact/{lead['id']}", headers=auth(token)).status_code == 200
    # Jo is already a contact: the lead cannot become a second contact with that address.
    clash = web.patch(
        f"/api/v1/records/lead/{lead_jo['id']}", json={"type": "contact"}, headers=auth(token)
    )
    assert clash.status_code == 409 and f"contact:{alpha.contact_id}" in clash.json()["message"]
    assert set(links(sqlite_app, lead_jo["id"])) == set(alpha.message_ids)
    account = web.patch(
        f"/api/v1/records/lead/{lead_jo['id']}", json={"type": "account"}, headers=auth(token)
    )
    assert account.status_code == 422


def test_delete_keeps_the_mail_and_only_an_admin_or_the_owner_may(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    url = f"/api/v1/records/contact/{alpha.contact_id}"
    refused = web.delete(url, headers=auth(alpha.member_token))
    assert refused.status_code == 403
    assert web.delete(url, headers=auth(alpha.admin_token)).status_code == 204
    assert web.get(url, headers=auth(alpha.admin_token)).status_code == 404
    assert links(sqlite_app, alpha.contact_id) == {}
    with sqlite_app.sessions() as session:
        kept = session.scalar(
            select(func.count()).select_from(Message).where(Message.id.in_(alpha.message_ids))
        )
    assert kept == len(alpha.message_ids)
    mine = create(web, alpha.member_token, type="lead", name="Mine").json()
    assert mine["owner"]["email"] == alpha.member  # the caller, when no owner_id is given
    gone = web.delete(f"/api/v1/records/lead/{mine['id']}", headers=auth(alpha.member_token))
    assert gone.status_code == 204


def test_merge_moves_addresses_links_and_children_onto_the_survivor(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    token = alpha.admin_token
    source = create(web, token, type="lead", name="", emails=[{"address": JO}]).json()
    survivor = create(
        web, token, type="lead", name="Jo Lead", emails=[{"address": "jo@home.example"}]
    ).json()
    answer = web.post(
        f"/api/v1/records/lead/{survivor['id']}/merge",
        json={"from": f"lead:{source['id']}"},
        headers=auth(token),
    )
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    assert merged["id"] == survivor["id"] and merged["name"] == "Jo Lead"
    assert merged["email_fields"] == [
        {"field": "main", "address": "jo@home.example"},
        {"field": "secondary", "address": JO},
    ]
    assert set(links(sqlite_app, survivor["id"])) == set(alpha.message_ids)
    gone = web.get(f"/api/v1/records/lead/{source['id']}", headers=auth(token))
    assert gone.status_code == 404
    # An account's contacts and domains move with it.
    web.patch(
        f"/api/v1/records/contact/{alpha.contact_id}",
        json={"account_id": alpha.account_id},
        headers=auth(token),
    )
    target = create(web, token, type="account", name="Alpha Group", domains=["alpha-group.example"])
    into = web.post(
        f"/api/v1/records/account/{target.json()['id']}/merge",
        json={"from": f"account:{alpha.account_id}"},
        headers=auth(token),
    ).json()
    assert set(into["domains"]) == {"alpha-group.example", "client-alpha.example"}
    contact = web.get(f"/api/v1/records/contact/{alpha.contact_id}", headers=auth(token)).json()
    assert contact["account"] == into["id"]
    wrong = web.post(
        f"/api/v1/records/account/{into['id']}/merge",
        json={"from": f"contact:{alpha.contact_id}"},
        headers=auth(token),
    )
    assert wrong.status_code == 422


def test_a_lead_contact_or_case_from_an_email_takes_the_sender_or_the_reply_to(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    ingest(
        sqlite_app,
        alpha.mailbox_id,
        mail(
            sender="Web Form <noreply@forms.example>",
            to="admin@alpha.example",
            subject="New enquiry",
            message_id="form-1@forms.example",
            headers=[("Reply-To", "Pat Buyer <pat@buyer-corp.example>")],
        ),
        mail(
            sender="Sam Free <sam@gmail.com>",
            to="admin@alpha.example",
            subject="Broken invoice",
            message_id="free-1@gmail.example",
        ),
    )
    with sqlite_app.sessions() as session:
        ids = dict(session.execute(select(Message.message_id, Message.id)).all())
    form, free = ids["form-1@forms.example"], ids["free-1@gmail.example"]
    contact = web.post(
        f"/api/v1/messages/{form}/records",
        json={"type": "contact", "use": "reply-to"},
        headers=auth(alpha.member_token),
    )
    assert contact.status_code == 201, contact.text
    body = contact.json()
    assert body["name"] == "Pat Buyer" and body["emails"] == ["pat@buyer-corp.example"]
    account = web.get(
        f"/api/v1/records/account/{body['account']}", headers=auth(alpha.member_token)
    ).json()
    assert account["domains"] == ["buyer-corp.example"]
    assert form in links(sqlite_app, body["id"])
    shown = web.get(f"/api/v1/messages/{form}", headers=auth(alpha.member_token)).json()
    assert {
        "record": f"contact:{body['id']}",
        "type": "contact",
        "id": body["id"],
        "name": "Pat Buyer",
        "reason": "address:main",
        "why": "their address",
    } in shown["linked"]
    case = web.post(
        f"/api/v1/messages/{free}/records",
        json={"type": "case"},
        headers=auth(alpha.member_token),
    ).json()
    assert case["name"] == "Broken invoice" and case["emails"] == ["sam@gmail.com"]
    assert case["account"] is None  # free mail names no company
    assert free in links(sqlite_app, case["id"])
    no_reply_to = web.post(
        f"/api/v1/messages/{free}/records",
        json={"type": "lead", "use": "reply-to"},
        headers=auth(alpha.member_token),
    )
    assert no_reply_to.status_code == 422
    account_type = web.post(
        f"/api/v1/messages/{free}/records",
        json={"type": "account"},
        headers=auth(alpha.admin_token),
    )
    assert account_type.status_code == 422 and "type" in account_type.json()["message"]


def test_another_companys_records_messages_and_users_answer_like_missing_ones(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    theirs = auth(beta.admin_token)
    record = f"/api/v1/records/contact/{alpha.contact_id}"
    missing = "/api/v1/records/contact/999999"
    for url in (record, missing):
        assert web.patch(url, json={"name": "x"}, headers=theirs).status_code == 404
        assert web.delete(url, headers=theirs).status_code == 404
        assert (
            web.post(url + "/merge", json={"from": f"contact:{beta.contact_id}"}, headers=theirs)
        ).status_code == 404
    into_mine = web.post(
        f"/api/v1/records/contact/{beta.contact_id}/merge",
        json={"from": f"contact:{alpha.contact_id}"},
        headers=theirs,
    )
    assert into_mine.status_code == 404
    for message in (alpha.message_ids[0], 999999):
        answer = web.post(
            f"/api/v1/messages/{message}/records", json={"type": "lead"}, headers=theirs
        )
        assert answer.status_code == 404
    foreign_owner = create(
        web, beta.admin_token, type="lead", name="X", owner_id=user_id(sqlite_app, alpha.admin)
    )
    assert foreign_owner.status_code == 422
    foreign_account = create(
        web, beta.admin_token, type="contact", name="X", account_id=alpha.account_id
    )
    assert foreign_account.status_code == 422
    # Beta may hold the same address as Alpha's contact: tenants never collide.
    same = create(web, beta.admin_token, type="contact", name="Jo", emails=[{"address": JO}])
    assert same.status_code == 201
    assert set(links(sqlite_app, same.json()["id"])) == set()  # Alpha's mail is Alpha's
