"""Aliases outside the company's domains are confirmed by a mailed link; inside them an
admin approves or rejects them (issue 11, item 1).

Before: an alias outside the company's domains could only wait for an admin, nothing was
mailed, nothing could be rejected, and its owner saw no state. Now connecting a mailbox
mails each outside alias a single-use, 7-day link from the notice mailbox; only the POST
of the page it opens confirms; without a notice mailbox the state says so and an admin
may still approve by hand; admins reject through the same service from the CLI, the API
and the approval page.
"""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta
from email.policy import default

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MailboxAlias, User
from mailroom.db.outbox_models import OutboxEntry
from mailroom.mailboxes.store import add_mailbox
from mailroom.outbox.smtp_settings import set_smtp
from mailroom.services.aliases import confirm_alias, request_confirmations
from mailroom.services.notices import set_notice_mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_web import Tenant, csrf_of, seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli
from tests.interfaces.api.test_visibility import bearer

OUTSIDE = "ann.private@elsewhere.example"
INSIDE = "sales@alpha.example"


def notice_mailbox(app: App, tenant: Tenant) -> None:
    """The admin's mailbox can send and is the company's notice mailbox."""
    with transaction(app.sessions) as session:
        box = session.get(Mailbox, tenant.mailbox_id)
        assert box is not None
        set_smtp(session, app.secrets, mailbox=box, host=box.host, port=587)
        set_notice_mailbox(session=session, company_id=tenant.company_id, mailbox_id=box.id)


def members_box(app: App, tenant: Tenant, *aliases: str, mail_links: bool = True) -> int:
    """A mailbox of the member with pending `aliases`, confirmations requested as on connect."""
    with transaction(app.sessions) as session:
        member = session.scalars(select(User).where(User.email == tenant.member)).one()
        box = add_mailbox(
            session,
            app.secrets,
            user=member,
            host="imap.test",
            port=993,
            password="pw-123",
            aliases=aliases,
        )
        session.flush()
        if mail_links:
            request_confirmations(session, mailbox=box, public_url=app.settings.public_url)
        return box.id


def mailed_to(app: App, address: str) -> list[str]:
    """The text of each queued mail to `address`."""
    with app.sessions() as session:
        entries = session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
        texts = []
        for entry in entries:
            if address in entry.recipients and entry.raw is not None:
                parsed = email.message_from_bytes(entry.raw, policy=default)
                body = parsed.get_body(preferencelist=("plain",))
                assert body is not None
                texts.append(body.get_content())
        return texts


def token_in(text: str) -> str:
    found = re.search(r"/aliases/confirm\?token=([A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


def states(web: TestClient, tenant: Tenant, box: int) -> dict[str, str]:
    answer = web.get(f"/api/v1/mailboxes/{box}", headers=bearer(tenant.member_token)).json()
    return {a["address"]: a["state"] for a in answer["alias_states"]}


def approved(app: App, box: int, address: str) -> bool:
    with app.sessions() as session:
        alias = session.scalars(
            select(MailboxAlias).where(
                MailboxAlias.mailbox_id == box, MailboxAlias.address == address
            )
        ).one()
        return alias.approved


def test_connecting_a_mailbox_mails_a_link_only_to_aliases_outside_the_companys_domains(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    notice_mailbox(sqlite_app, alpha)
    user, password = imap_user
    body = {
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "username": user,
        "password": password,
        "allow_self_signed": True,
        "aliases": [OUTSIDE, INSIDE],
    }
    made = web.post("/api/v1/mailboxes", json=body, headers=bearer(alpha.member_token))
    assert made.status_code == 201, made.text
    box = made.json()["id"]
    (text,) = mailed_to(sqlite_app, OUTSIDE)
    assert f"{sqlite_app.settings.public_url.rstrip('/')}/aliases/confirm?token=" in text
    assert alpha.member in text and "7 days" in text
    assert mailed_to(sqlite_app, INSIDE) == []
    assert states(web, alpha, box) == {
        OUTSIDE: "awaiting_confirmation",
        INSIDE: "awaiting_admin",
    }
    with sqlite_app.sessions() as session:  # the token is stored hashed only
        hashes = session.scalars(select(MailboxAlias.confirm_token_hash)).all()
        assert token_in(text) not in hashes and any(hashes)


def test_the_link_shows_a_confirm_button_and_only_its_post_confirms_once(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    notice_mailbox(sqlite_app, alpha)
    box = members_box(sqlite_app, alpha, OUTSIDE)
    token = token_in(mailed_to(sqlite_app, OUTSIDE)[0])

    page = web.get(f"/aliases/confirm?token={token}")  # what a mail scanner does
    assert page.status_code == 200
    assert f"Confirm {OUTSIDE}" in page.text and alpha.member in page.text
    assert not approved(sqlite_app, box, OUTSIDE)

    form = {"token": token, "csrf_token": csrf_of(page.text)}
    forged = web.post(
        "/aliases/confirm",
        data=form,
        headers={"Origin": "http://evil.example"},
    )
    assert forged.status_code == 403 and not approved(sqlite_app, box, OUTSIDE)
    done = web.post("/aliases/confirm", data=form, headers=ORIGIN)
    assert done.status_code == 200 and "is confirmed" in done.text
    assert approved(sqlite_app, box, OUTSIDE)
    assert states(web, alpha, box) == {OUTSIDE: "approved"}

    again = web.post("/aliases/confirm", data=form, headers=ORIGIN)
    assert again.status_code == 404 and "does not work" in again.text
    assert web.get(f"/aliases/confirm?token={token}").status_code == 404
    assert web.get("/aliases/confirm?token=made-up").status_code == 404


def test_a_link_expires_after_seven_days_and_a_resent_link_replaces_it(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    notice_mailbox(sqlite_app, alpha)
    box = members_box(sqlite_app, alpha, OUTSIDE)
    first = token_in(mailed_to(sqlite_app, OUTSIDE)[0])
    with sqlite_app.sessions() as session:
        late = datetime.now(UTC) + timedelta(days=7, minutes=1)
        with pytest.raises(Exception, match="does not work"):
            confirm_alias(session=session, token=first, now=late)

    resend = web.post(
        f"/api/v1/mailboxes/{box}/aliases/resend",
        json={"address": OUTSIDE},
        headers=bearer(alpha.member_token),
    )
    assert resend.status_code == 200, resend.text
    texts = mailed_to(sqlite_app, OUTSIDE)
    assert len(texts) == 2
    second = token_in(texts[1])
    assert second != first
    assert web.get(f"/aliases/confirm?token={first}").status_code == 404
    assert web.get(f"/aliases/confirm?token={second}").status_code == 200


def test_without_a_notice_mailbox_the_state_says_so_and_an_admin_may_still_approve(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    box = members_box(sqlite_app, alpha, OUTSIDE)
    assert mailed_to(sqlite_app, OUTSIDE) == []
    mailbox = web.get(f"/api/v1/mailboxes/{box}", headers=bearer(alpha.member_token)).json()
    (state,) = mailbox["alias_states"]
    assert state["state"] == "confirmation_not_sent"
    assert "no notice mailbox" in state["words"]

    csrf = sign_in(web, alpha.member)
    page = web.get(f"/mailboxes/{box}/settings")
    assert OUTSIDE in page.text and "no notice mailbox" in page.text
    resend = web.post(
        f"/mailboxes/{box}/aliases/resend",
        data={"address": OUTSIDE, "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert resend.status_code == 422
    assert "No confirmation mail was sent" in resend.text and "Admin" in resend.text

    approve = f"/api/v1/mailboxes/{box}/aliases/approve"
    done = web.post(approve, json={"address": OUTSIDE}, headers=bearer(alpha.admin_token))
    assert done.status_code == 200 and done.json()["pending_aliases"] == []


def test_admins_reject_an_alias_through_the_api_the_cli_and_the_approval_page(
    web: TestClient,
    sqlite_app: App,
    fast_hashing: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    beta = seed_tenant(sqlite_app, "Beta")
    box = members_box(sqlite_app, alpha, INSIDE, "support@alpha.example", "help@alpha.example")
    reject = f"/api/v1/mailboxes/{box}/aliases/reject"
    body = {"address": INSIDE}
    assert web.post(reject, json=body, headers=bearer(alpha.member_token)).status_code == 404
    assert web.post(reject, json=body, headers=bearer(beta.admin_token)).status_code == 404
    done = web.post(reject, json=body, headers=bearer(alpha.admin_token))
    assert done.status_code == 200, done.text
    assert INSIDE not in done.json()["aliases"]

    code = run_cli(
        sqlite_app, monkeypatch, "mailbox", "reject-alias", str(box), "help@alpha.example"
    )
    assert code == 0 and "rejected" in capsys.readouterr().out

    csrf = sign_in(web, alpha.admin)
    page = web.get("/admin/aliases")
    assert page.status_code == 200
    assert "support@alpha.example" in page.text and alpha.member in page.text
    assert "Waiting for an admin" in page.text
    approve = web.post(
        f"/admin/aliases/{box}/approve",
        data={"address": "support@alpha.example", "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert approve.status_code == 200 and "support@alpha.example approved" in approve.text
    assert approved(sqlite_app, box, "support@alpha.example")
    with sqlite_app.sessions() as session:
        left = session.scalars(
            select(MailboxAlias.address).where(MailboxAlias.mailbox_id == box)
        ).all()
        assert left == ["support@alpha.example"]


def test_members_do_not_see_the_approval_page(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    members_box(sqlite_app, alpha, INSIDE)
    sign_in(web, alpha.member)
    assert web.get("/admin/aliases").status_code == 404


def test_an_alias_never_mailed_is_sent_from_the_owners_settings_page(
    web: TestClient, sqlite_app: App, fast_hashing: None
) -> None:
    """An outside alias stored before confirmations existed (or before the company chose
    a notice mailbox): its state asks for the mail, and the settings page's button sends it."""
    alpha = seed_tenant(sqlite_app, "Alpha")
    notice_mailbox(sqlite_app, alpha)
    box = members_box(sqlite_app, alpha, OUTSIDE, mail_links=False)
    mailbox = web.get(f"/api/v1/mailboxes/{box}", headers=bearer(alpha.member_token)).json()
    (state,) = mailbox["alias_states"]
    assert (state["address"], state["state"]) == (OUTSIDE, "confirmation_not_sent")
    assert "send it" in state["words"] and "no notice mailbox" not in state["words"]
    csrf = sign_in(web, alpha.member)
    assert "Send the confirmation again" in web.get(f"/mailboxes/{box}/settings").text
    sent = web.post(
        f"/mailboxes/{box}/aliases/resend",
        data={"address": OUTSIDE, "csrf_token": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert len(mailed_to(sqlite_app, OUTSIDE)) == 1
    assert states(web, alpha, box) == {OUTSIDE: "awaiting_confirmation"}
