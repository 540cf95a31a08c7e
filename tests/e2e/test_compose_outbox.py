"""Reply-all with a signature, a refused send and the Outbox, in real headless Chromium
against the live server and the real aiosmtpd (issue 13 item 8), on a desktop and on a
390-px phone. Screenshots go to test-output/screenshots/ (compose-*.png)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from mailroom.db.models import Message, User
from mailroom.security.passwords import hash_password
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import SmtpTestServer, make_outbox_env
from tests.conftest_web import PASSWORD, LiveServer
from tests.e2e.test_dashboard import TIMEOUT, browser, shot, sign_in  # noqa: F401
from tests.helpers.matching_kit import ingest

NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def test_reply_all_with_a_signature_then_a_refused_send_shows_red_in_the_outbox(
    live_server: LiveServer,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    browser: object,  # noqa: F811
) -> None:
    app = live_server.app
    env = make_outbox_env(app, dovecot, imap_user, smtp, monkeypatch)
    with app.sessions() as session:
        session.execute(
            update(User)
            .where(User.email == "ann@acme.example")
            .values(password_hash=hash_password(PASSWORD))
        )
        session.commit()
    ingest(
        app,
        env.mailbox_id,
        build_message(
            sender="Jo Client <jo@client.example>",
            to="ann@acme.example, pat@client.example",
            cc="boss@client.example",
            subject="Forty widgets",
            body="Can you ship forty widgets by Friday?",
            message_id="<w40@client.example>",
        ),
    )
    with app.sessions() as session:
        message_id = session.scalar(
            select(Message.id).where(Message.message_id == "w40@client.example")
        )
    url = live_server.url
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT)
    sign_in(page, url, "ann@acme.example")

    # A signature on the account page.
    page.goto(f"{url}/account")
    page.fill("#signature-text", "Ann Seller\nSales, Acme")
    page.click("#signature-save")
    page.locator("text=Signature saved.").wait_for()
    shot(page, "compose-account-signature")

    # Reply all from the message: To keeps Pat, Cc keeps the boss, Ann is on neither.
    page.goto(f"{url}/messages/{message_id}")
    page.click("#reply-all-button")
    assert page.locator("#to").input_value() == "jo@client.example, pat@client.example"
    assert page.locator("#cc").input_value() == "boss@client.example"
    assert page.locator("#use-signature").is_checked() and page.locator("#use-quote").is_checked()
    assert "Ann Seller" in page.locator("#signature-preview").inner_text()
    page.fill("#text", "Yes, by Friday.")
    shot(page, "compose-reply-all")
    page.click("#send-button")
    page.locator("text=Sent. It is on the timeline.").wait_for()
    (got,) = smtp.messages
    assert sorted(got.rcpt_tos) == [
        "boss@client.example",
        "jo@client.example",
        "pat@client.example",
    ]
    parsed = message_from_bytes(got.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(preferencelist=("plain",))
    assert part is not None
    body = str(part.get_content()).replace("\r\n", "\n")
    assert body.index("Yes, by Friday.") < body.index("-- \nAnn Seller\nSales, Acme")
    assert body.index("-- \nAnn Seller") < body.index("> Can you ship forty widgets by Friday?")

    # A send the server refuses: red on the form, a red banner, Failed with Retry in the Outbox.
    page.goto(f"{url}/compose")
    page.fill("#to", "reject-me@client.example")
    page.fill("#subject", "This one bounces")
    page.fill("#text", "Hello")
    page.click("#send-button")
    error = page.locator("form#compose-form").locator("xpath=preceding-sibling::div[@role='alert']")
    error.first.wait_for()
    assert page.locator(".notice").count() == 0
    page.goto(f"{url}/records")
    banner = page.locator("#send-failed-banner")
    assert "could not be sent" in banner.inner_text()
    banner.locator("a", has_text="Outbox").click()
    failed = page.locator(".entry.failed")
    failed.wait_for()
    assert "This one bounces" in failed.inner_text() and "Fix:" in failed.inner_text()
    assert failed.locator("button.retry").is_visible()
    assert page.locator(".entry.sent", has_text="Re: Forty widgets").count() == 1
    shot(page, "compose-outbox")
    failed.locator("button.retry").click()
    page.locator("text=Still not sent").wait_for()

    # A phone: the compose form and the Outbox fit 390 px.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{url}/compose?mode=reply-all&message={message_id}")
    assert page.evaluate(NO_OVERFLOW)
    assert page.locator("#send-button").is_visible()
    shot(page, "compose-reply-all-phone")
    page.goto(f"{url}/outbox")
    assert page.evaluate(NO_OVERFLOW)
    assert page.locator(".entry.failed button.retry").is_visible()
    shot(page, "compose-outbox-phone")

    # The mailbox's feeds on its settings page (phone width): untick accounts, save.
    page.goto(f"{url}/mailboxes/{env.mailbox_id}/settings")
    page.uncheck("#feeds input[value=account]")
    page.click("#feeds-save")
    page.locator("text=links only to the record types ticked").wait_for()
    assert not page.locator("#feeds input[value=account]").is_checked()
    assert page.locator("#feeds input[value=lead]").is_checked()
    assert page.evaluate(NO_OVERFLOW)
    shot(page, "compose-mailbox-feeds-phone")
