"""The record pages and the message page as a sales team uses them (issue 13, items 1-2):
create, edit, add and remove addresses, delete and merge records in forms; make a lead,
contact or case from an email; find a record to link by name; linked records by name with
the reason in words; custom fields shown as fields; an error page with a way back."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import MessageLink, Record
from tests.conftest_web import Tenant, sign_in
from tests.helpers.matching_kit import ingest, mail

ORIGIN = {"Origin": "http://testserver"}
JO = "jo@client-alpha.example"


def post(web: TestClient, url: str, csrf: str, **form: str) -> tuple[int, str]:
    answer = web.post(
        url, data={"csrf_token": csrf, **form}, headers=ORIGIN, follow_redirects=False
    )
    return answer.status_code, answer.headers.get("location", answer.text)


def linked(app: App, record_id: int) -> set[int]:
    with app.sessions() as session:
        return set(
            session.scalars(
                select(MessageLink.message_id).where(MessageLink.record_id == record_id)
            )
        )


def test_a_record_is_created_edited_and_its_addresses_changed_in_forms(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    listing = web.get("/records").text
    assert "Opportunities" in listing and "Opportunitys" not in listing
    status, where = post(web, "/records", csrf, type="lead", name="Jo Lead", email=JO)
    assert status == 303
    found = re.match(r"/records/lead/(\d+)\?notice=record-created&linked=3", where)
    assert found, where
    lead = int(found.group(1))
    page = web.get(where).text
    assert "3 stored messages linked" in page and "lead:" in page
    assert linked(sqlite_app, lead) == set(alpha.message_ids)
    status, where = post(web, f"/records/lead/{lead}/emails/remove", csrf, address=JO)
    assert status == 303 and "unlinked=3" in where
    assert linked(sqlite_app, lead) == set()
    status, where = post(web, f"/records/lead/{lead}/emails", csrf, address=JO, field="main")
    assert status == 303 and "linked=3" in where
    with sqlite_app.sessions() as session:
        admin_id = session.scalar(select(Record.owner_id).where(Record.id == lead))
    status, _ = post(
        web,
        f"/records/lead/{lead}/edit",
        csrf,
        name="Jo Renamed",
        owner="",
        stage="qualified",
        status="open",
        account=str(alpha.account_id),
    )
    assert status == 303
    with sqlite_app.sessions() as session:
        record = session.get(Record, lead)
        assert record is not None
        assert (record.name, record.owner_id, record.account_id) == (
            "Jo Renamed",
            None,
            alpha.account_id,
        )
        assert record.fields == {"stage": "qualified", "status": "open"}
    assert admin_id is not None  # the creator owned it until the form gave it to nobody
    bad, body = post(web, f"/records/lead/{lead}/emails", csrf, address="not an address")
    assert bad == 422 and "not an email address" in body


def test_custom_fields_show_as_fields_and_the_account_once(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    with transaction(sqlite_app.sessions) as session:
        record = session.get(Record, alpha.contact_id)
        assert record is not None
        record.account_id = alpha.account_id
        record.fields = {"account": "Client Alpha", "custom": {"shoe_size": "44", "vip": "yes"}}
    sign_in(web, alpha.member)
    page = web.get(f"/records/contact/{alpha.contact_id}").text
    assert "<dt>shoe size</dt><dd>44</dd>" in page and "<dt>vip</dt><dd>yes</dd>" in page
    assert "{" not in page.split('<dl class="facts">')[1].split("</dl>")[0]
    assert page.count("<dt>account</dt>") == 1


def test_delete_and_merge_in_forms_with_the_roles_the_service_checks(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.admin)
    _, where = post(web, "/records", csrf, type="contact", name="Jo twin", email="jo@twin.example")
    twin = int(where.split("/")[3].split("?")[0])
    search = web.get(f"/records/contact/{alpha.contact_id}?merge_q=twin").text
    assert f'name="source" value="contact:{twin}"' in search
    status, where = post(
        web, f"/records/contact/{alpha.contact_id}/merge", csrf, source=f"contact:{twin}"
    )
    assert status == 303 and where.endswith("notice=records-merged")
    with sqlite_app.sessions() as session:
        assert session.get(Record, twin) is None
        survivor = session.get(Record, alpha.contact_id)
        assert survivor is not None
        assert [e.address for e in survivor.emails] == [JO, "jo@twin.example"]
    status, where = post(web, f"/records/contact/{alpha.contact_id}/delete", csrf, confirm="on")
    assert status == 303 and where == "/records?type=contact&notice=record-deleted"
    assert linked(sqlite_app, alpha.contact_id) == set()


def test_a_member_cannot_delete_a_colleagues_record(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    page = web.get(f"/records/account/{alpha.account_id}").text
    assert "delete-form" not in page
    status, _ = post(web, f"/records/account/{alpha.account_id}/delete", csrf, confirm="on")
    assert status == 403


def test_the_message_page_makes_a_record_from_the_email_and_links_by_name(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    ingest(
        sqlite_app,
        alpha.mailbox_id,
        mail(
            sender="Forms <noreply@forms.example>",
            to="admin@alpha.example",
            subject="Web enquiry",
            message_id="enquiry@forms.example",
            headers=[("Reply-To", "Pat Buyer <pat@buyer.example>")],
        ),
    )
    with sqlite_app.sessions() as session:
        from mailroom.db.models import Message

        form_mail = session.scalar(
            select(Message.id).where(Message.message_id == "enquiry@forms.example")
        )
    assert form_mail is not None
    csrf = sign_in(web, alpha.member)
    page = web.get(f"/messages/{form_mail}").text
    assert "Create lead from this email" in page and "pat@buyer.example" in page
    status, where = post(web, f"/messages/{form_mail}/records", csrf, type="lead", use="reply-to")
    assert status == 303 and where.startswith("/records/lead/")
    lead = int(where.split("/")[3].split("?")[0])
    assert form_mail in linked(sqlite_app, lead)
    page = web.get(f"/messages/{form_mail}").text
    assert f'href="/records/lead/{lead}">Pat Buyer</a> <span class="tag">lead</span>' in page
    assert "by hand" in page or "their address" in page
    # Link to… finds a record by name, never by typing TYPE:ID; another company's is not offered.
    found = web.get(f"/messages/{form_mail}?find=Client").text
    assert f'value="account:{alpha.account_id}"' in found
    assert f'value="account:{beta.account_id}"' not in found
    status, _ = post(
        web, f"/messages/{form_mail}/links", csrf, record=f"account:{alpha.account_id}"
    )
    assert status == 303
    page = web.get(f"/messages/{first_message(alpha)}").text
    assert "their address" in page  # Jo's mail is on Jo's contact by their address


def first_message(tenant: Tenant) -> int:
    return tenant.message_ids[0]


def test_an_error_page_offers_the_way_back_to_the_form(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    csrf = sign_in(web, alpha.member)
    back = f"http://testserver/messages/{alpha.message_ids[0]}?find=x"
    answer = web.post(
        f"/messages/{alpha.message_ids[0]}/links",
        data={"csrf_token": csrf, "record": "contact:999999"},
        headers={**ORIGIN, "Referer": back},
    )
    assert answer.status_code == 404
    assert f'href="/messages/{alpha.message_ids[0]}?find=x" id="go-back"' in answer.text
