"""An HTML-only message body and a reader of the multipart/alternative a send makes of it."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

HTML = (
    "<html><head><title>Offer</title><style>p { color: red }</style></head><body>"
    "<h1>Your   quote</h1><p>Hello <b>Jo</b> &amp; team,<br>the price is &lt; 100&nbsp;EUR.</p>"
    "<script>alert('x')</script><!-- internal note --><ul><li>one</li><li>two</li></ul>"
    "<p>&lt;script&gt;alert(1)&lt;/script&gt; is text here</p></body></html>"
)


def parts(data: bytes) -> dict[str, str]:
    """The text of each part of a multipart/alternative message, by content type."""
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/alternative"
    found = {}
    for part in msg.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = str(part.get_content())
    return found
