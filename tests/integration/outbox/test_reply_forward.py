"""Reply, reply-all and forward through services.compose, sent to the real aiosmtpd:
who receives a reply-all, the forwarded attachments that arrive, where the signature and
the quoted original sit in the body (issue 13 item 8)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.access import Viewer, viewer_for
from mailroom.db.engine import transaction
from mailroom.db.models import MailboxAlias, Message, User
from mailroom.outbox.service import SendRequest
from mailroom.services.compose import (
    Compose,
    compose_form,
    reply_recipients,
    send_composed,
    set_signature,
)
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env
from tests.helpers.matching_kit import ingest

SIGNATURE = "Ann Seller\nSales, Acme"


@pytest.fixture
def env(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> OutboxEnv:
    return make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch)


def viewer(env: OutboxEnv) -> Viewer:
    with env.app.sessions() as session:
        user = session.scalar(select(User).where(User.email == "ann@acme.example"))
        assert user is not None
        return viewer_for(session, user)


def stored(env: OutboxEnv, data: bytes, message_id: str) -> int:
    ingest(env.app, env.mailbox_id, data)
    with env.app.sessions() as session:
        found = session.scalar(select(Message.id).where(Message.message_id == message_id))
        assert found is not None
        return found


def send(env: OutboxEnv, how: Compose, **fields: object) -> str:
    values: dict[str, object] = {"mailbox_id": env.mailbox_id, "subject": "", "text": "Thanks!"}
    values.update(fields)
    ann = viewer(env)
    with env.app.sessions() as session:
        result = send_composed(
            env.app,
            session,
            viewer=ann,
            request=SendRequest(**values),  # type: ignore[arg-type]
            how=how,
        )
    assert result.error is None and result.status == "sent", result
    return result.message_id


def arrived(env: OutboxEnv, index: int = -1) -> EmailMessage:
    parsed = message_from_bytes(env.smtp.messages[index].data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


QUESTION = build_message(
    sender="Jo Client <jo@client.example>",
    to="ann@acme.example, pat@client.example, ann.alias@acme.example",
    cc="boss@client.example, ann@acme.example, Jo@client.example",
    subject="Widget question",
    body="Can you ship 40 widgets?\nBy Friday?",
    message_id="<q40@client.example>",
)


def test_reply_all_keeps_to_and_cc_without_the_users_own_addresses(env: OutboxEnv) -> None:
    with transaction(env.app.sessions) as session:  # an approved alias is Ann's own too
        session.add(
            MailboxAlias(mailbox_id=env.mailbox_id, address="ann.alias@acme.example", approved=True)
        )
    parent = stored(env, QUESTION, "q40@client.example")
    ann = viewer(env)
    with env.app.sessions() as session:
        form = compose_form(session, env.app, viewer=ann, mode="reply-all", message_id=parent)
        message = session.get(Message, parent)
        assert message is not None
        one_to, one_cc = reply_recipients(message, own=ann.addresses, reply_all=False)
    assert form["to"] == "jo@client.example, pat@client.example"
    assert form["cc"] == "boss@client.example"  # ann@ dropped, Jo@ already in To
    assert (one_to, one_cc) == (["jo@client.example"], [])
    send(
        env,
        Compose(reply_to=parent),
        to=form["to"].split(", "),
        cc=form["cc"].split(", "),
    )
    (got,) = env.smtp.messages
    assert sorted(got.rcpt_tos) == [
        "boss@client.example",
        "jo@client.example",
        "pat@client.example",
    ]
    msg = arrived(env)
    assert msg["In-Reply-To"] == "<q40@client.example>"
    assert msg["Subject"] == "Re: Widget question"
    assert "acme.example" not in str(msg["To"]) + str(msg["Cc"])


def test_signature_goes_below_the_text_and_above_the_quoted_original(env: OutboxEnv) -> None:
    parent = stored(env, QUESTION, "q40@client.example")
    ann = viewer(env)
    with env.app.sessions() as session:
        set_signature(session, viewer=ann, signature=SIGNATURE)
    send(
        env,
        Compose(reply_to=parent, quote=True),
        to=["jo@client.example"],
        text="Yes, we can.",
    )
    body = text_of(arrived(env))
    assert body.startswith("Yes, we can.\n\n-- \nAnn Seller\nSales, Acme\n\nOn ")
    text_at, sig_at, quote_at = (
        body.index("Yes, we can."),
        body.index("-- \nAnn Seller"),
        body.index("Jo Client <jo@client.example> wrote:"),
    )
    assert text_at < sig_at < quote_at
    assert "> Can you ship 40 widgets?\n> By Friday?" in body


def test_an_html_original_is_quoted_sanitised_in_a_blockquote(env: OutboxEnv) -> None:
    data = build_message(
        subject="Specs",
        body="See the specs.",
        html='<p>See the <b>specs</b>.</p><script>alert(1)</script><img src="https://tracker.invalid/x.gif">',
        message_id="<h1@client.example>",
    )
    parent = stored(env, data, "h1@client.example")
    send(env, Compose(reply_to=parent, quote=True), to=["jo@client.example"], text="Got it.")
    msg = arrived(env)
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert '<blockquote type="cite"><p>See the <b>specs</b>.</p>' in html
    assert "<script" not in html and "tracker.invalid" not in html and "<img" not in html
    assert html.index("<p>Got it.</p>") < html.index("<blockquote")
    assert "> See the specs." in text_of(msg)


def test_forward_carries_the_originals_attachments_and_a_fwd_subject(env: OutboxEnv) -> None:
    data = build_message(
        subject="Drawing",
        body="The drawing is attached.",
        message_id="<d1@client.example>",
        attachment=("drawing.pdf", b"%PDF-1.4 the drawing"),
    )
    original = stored(env, data, "d1@client.example")
    ann = viewer(env)
    with env.app.sessions() as session:
        set_signature(session, viewer=ann, signature=SIGNATURE)
    send(
        env,
        Compose(forward_of=original),
        to=["colleague@partner.example"],
        text="FYI, see below.",
    )
    (got,) = env.smtp.messages
    assert got.rcpt_tos == ["colleague@partner.example"]
    msg = arrived(env)
    assert msg["Subject"] == "Fwd: Drawing"
    assert msg["In-Reply-To"] is None  # a forward starts its own conversation
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert files == {"drawing.pdf": b"%PDF-1.4 the drawing"}
    body = text_of(msg)
    assert body.index("FYI, see below.") < body.index("-- \nAnn Seller")
    assert body.index("-- \nAnn Seller") < body.index("---------- Forwarded message ----------")
    assert "Subject: Drawing" in body and "The drawing is attached." in body


def test_without_a_signature_or_quote_the_text_goes_out_as_written(env: OutboxEnv) -> None:
    send(env, Compose(), to=["jo@client.example"], subject="Plain", text="Just this.\n")
    assert text_of(arrived(env)) == "Just this.\n"


def test_the_cli_forwards_and_quotes_like_the_page(
    env: OutboxEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailroom.cli import main

    monkeypatch.setenv("MAILROOM_SECRET_KEY", env.app.settings.secret_key_b64 or "")
    stored(
        env,
        build_message(
            subject="Drawing",
            body="The drawing is attached.",
            message_id="<d2@client.example>",
            attachment=("drawing.pdf", b"%PDF-1.4 the drawing"),
        ),
        "d2@client.example",
    )
    ann = viewer(env)
    with env.app.sessions() as session:
        set_signature(session, viewer=ann, signature=SIGNATURE)
    base = ["--data-dir", str(env.app.settings.data_dir), "send", "--mailbox", str(env.mailbox_id)]
    code = main([*base, "--to", "colleague@partner.example", "--subject", "", "--body", "FYI",
                 "--forward", "d2@client.example"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    msg = arrived(env)
    assert msg["Subject"] == "Fwd: Drawing"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["drawing.pdf"]
    body = text_of(msg)
    assert body.index("FYI") < body.index("-- \nAnn Seller") < body.index("Forwarded message")
    reply_args = ["--reply-to-message", "d2@client.example", "--quote", "--no-signature"]
    code = main([*base, "--to", "jo@client.example", "--subject", "", "--body", "Thanks",
                 *reply_args])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    reply = text_of(arrived(env))
    assert reply.startswith("Thanks\n\nOn ") and "-- \n" not in reply
    assert "> The drawing is attached." in reply
