"""Untrusted HTML mail made safe to show (invariant "untrusted mail", docs/architecture.md).

Three layers, each enough on its own to stop a script, and together stopping remote
requests too:

1. `sanitise_html` cleans the markup with nh3 (ammonia): an allow-list of tags and
   attributes, no `<script>`, `<style>`, `<svg>`, `<iframe>`, `<form>` or event handlers,
   links only to http(s)/mailto/tel (no `javascript:` or `data:`), inline `style` kept
   only for plain declarations (anything with `url(`, `expression(`, `@import` or a CSS
   escape is dropped), and every image pointing elsewhere (`http:`, `https:`, `data:`)
   replaced by a local placeholder until the reader asks for remote images; a `cid:`
   image (an inline part of the message itself, RFC 2392) is never remote: it is shown
   from the message's own bytes as a `data:` URI made here (`inline_sources`: raster
   image types only, size-capped), always, and never counted as blocked;
2. the dashboard shows the result in `<iframe sandbox>` without `allow-scripts` or
   `allow-same-origin`, so even a missed script has no origin and cannot run;
3. the frame's own response carries `frame_csp()`: `default-src 'none'` and, only when
   asked, `img-src` for remote images — nothing else may load. `data:` images are
   allowed by the frame's CSP: they make no request, and only the sanitiser's own
   `data:` URIs (the message's inline parts) survive the sanitiser.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import unquote

import nh3

from mailroom.mail.message import AttachmentInfo

BLOCKED_IMAGE = "/static/blocked-image.svg"
MISSING_INLINE = "/static/blocked-image.svg"  # a cid: the message does not hold (or too big)
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_INLINE_BYTES = 10 * 1024 * 1024  # all inline images of one message, before base64

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "span", "center"}
_GENERIC = {"style", "title", "lang", "dir", "align", "valign", "width", "height", "bgcolor"}
_ATTRIBUTES: dict[str, set[str]] = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()
}
_ATTRIBUTES["*"] = _GENERIC
_ATTRIBUTES["font"] = {"color", "face", "size"}
_ATTRIBUTES.setdefault("td", set()).update({"colspan", "rowspan", "nowrap"})
_ATTRIBUTES.setdefault("table", set()).update({"border", "cellpadding", "cellspacing"})
_SCHEMES = {"http", "https", "mailto", "tel", "cid"}  # cid: only reaches the image filter
_REMOTE = re.compile(r"^\s*(https?:|//)", re.IGNORECASE)
# A declaration that could fetch something or escape the parser is dropped whole.
_UNSAFE_CSS = re.compile(
    r"url\s*\(|expression\s*\(|@import|\\|image-set|-moz-binding|behavior", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class SafeHtml:
    """Sanitised HTML and how many remote images it had (0 when they were allowed)."""

    html: str
    blocked_images: int


def _clean_style(value: str) -> str | None:
    kept = [d.strip() for d in value.split(";") if d.strip() and not _UNSAFE_CSS.search(d)]
    return "; ".join(kept) or None


def inline_sources(attachments: Iterable[AttachmentInfo]) -> dict[str, str]:
    """The message's inline images as `data:` URIs by Content-ID (lower case)."""
    sources: dict[str, str] = {}
    budget = MAX_INLINE_BYTES
    for part in attachments:
        kind = part.content_type.lower()
        if not part.content_id or kind not in INLINE_TYPES or len(part.data) > budget:
            continue
        budget -= len(part.data)
        encoded = base64.b64encode(part.data).decode("ascii")
        sources.setdefault(part.content_id.lower(), f"data:{kind};base64,{encoded}")
    return sources


def _inline(value: str, inline: Mapping[str, str]) -> str:
    content_id = unquote(value.strip()[4:]).strip().strip("<>").lower()
    return inline.get(content_id, MISSING_INLINE)


def sanitise_html(
    html: str, *, allow_remote_images: bool = False, inline: Mapping[str, str] | None = None
) -> SafeHtml:
    """Clean `html` as the module docstring says; remote images count as `blocked_images`.

    `inline` maps Content-IDs to the `data:` URIs of `inline_sources`: `cid:` images show
    them; a `cid:` the message does not hold shows the placeholder, uncounted.
    """
    blocked = 0

    def keep(element: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if attribute == "style":
            return _clean_style(value)
        if element == "img" and attribute == "src":
            if value.strip().lower().startswith("cid:"):
                return _inline(value, inline or {})
            if allow_remote_images and _REMOTE.match(value) and not value.strip().startswith("//"):
                return value
            blocked += 1
            return BLOCKED_IMAGE
        return value

    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "svg", "math", "template", "noscript", "title"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return SafeHtml(html=cleaned, blocked_images=blocked)


def frame_csp(*, allow_remote_images: bool) -> str:
    """The Content-Security-Policy of the sandboxed frame that shows a message's HTML."""
    images = "'self' data: https: http:" if allow_remote_images else "'self' data:"
    return (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        f"img-src {images}; style-src 'unsafe-inline'; font-src 'none'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
    )


def frame_document(safe: SafeHtml, *, title: str) -> str:
    """A whole HTML document around sanitised HTML, to serve as the frame's content."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:12px;color:#1d2430;"
        "overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "table{max-width:100%}</style></head>"
        f"<body>{safe.html}</body></html>"
    )


def text_document(text: str, *, title: str) -> str:
    """A plain-text body shown in the same frame (escaped, wrapped)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>body{{margin:12px}}pre{{white-space:pre-wrap;"
        "font-family:ui-monospace,monospace;font-size:13px}</style></head>"
        f"<body><pre>{escape(text)}</pre></body></html>"
    )
