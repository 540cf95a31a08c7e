"""Email addresses as matching needs them: one canonical spelling, or nothing.

Matching a message to a CRM contact compares addresses, so every address Mailroom keeps
goes through `normalise`: whitespace and angle brackets stripped, the whole address
lower-cased (mailbox names are case-sensitive in theory, never in practice), a Unicode
domain converted to its IDNA ASCII form (`bücher.example` → `xn--bcher-kva.example`).
Anything that is not plausibly an address becomes None instead of a half-right string.

Redundant quotes in a local part go (`"jhyatt"@enron.com` is `jhyatt@enron.com`, as
`policy.default` reads it too). The checks are deliberately lenient about what real mail
contains (the Enron corpus has `k..allen@enron.com` and `.ward@enron.com`, which RFC 5322
forbids but which are someone's real address in that data) and strict about what could be
abused: no whitespace, no control characters (so no CR/LF header injection), no second
`@`, a domain with a dot. The result is always lower-case ASCII, so non-ASCII (RFC 6532)
local parts are rejected.

`parse_address_list` reads a whole To/Cc/From header with `email.utils.getaddresses` in
strict mode (the CVE-2023-27043 fix: a malformed header gives `('', '')` instead of a
wrong address). When strict mode gives up, the header is split at top-level commas and
each entry is retried alone; an entry strict mode still rejects is used only if it holds
exactly one `<addr-spec>` (the address a mail server would deliver to) or is one bare
word; anything else is dropped, never guessed. Everyday lists (`a@b.c, Name <a@b.c>`) skip
getaddresses for a regular expression, for speed; the tests check that both agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses
from functools import lru_cache

from mailroom.mail.headers import decode_text, to_text
from mailroom.mail.message import Address

__all__ = ["domain_of", "is_valid", "normalise", "parse_address_list"]

# Characters never allowed anywhere in a kept address: whitespace, controls (CR/LF
# injection), DEL, and the specials that only make sense around an address.
_FORBIDDEN = re.compile(r"[\s\x00-\x20\x7f-\x9f<>()\[\],;:\\@]")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_IPV4_LITERAL = re.compile(r"\[\d{1,3}(?:\.\d{1,3}){3}\]")
_LOCAL_QUOTING = re.compile(r'\\(.)|"')  # a quoted pair keeps its char; a bare quote goes
_ANGLE = re.compile(r"<([^<>]*)>")
_WS = re.compile(r"\s+")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_ADDRESS = 320
# The everyday shapes of an address list, which need none of getaddresses' generality:
# `a@b.c`, `Name <a@b.c>`, `"Last, First" <a@b.c>`, comma-separated. Anything else (comments,
# groups, escapes, odd domains) goes to getaddresses; tests check both agree on these.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_SIMPLE_ADDR = rf"[{_ATEXT}.]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SIMPLE_WORDS = rf"[{_ATEXT}.]+(?:[ \t]+[{_ATEXT}.]+)*"
# No two parts can match the same blanks, so a failed match backtracks in linear time (an
# earlier version, with blanks inside the name part, took minutes on 4,000 blanks). Not
# written with possessive quantifiers: 3.11.2's re mis-captures groups with them.
_SIMPLE_ITEM = re.compile(
    rf"[ \t]*(?:(?P<bare>{_SIMPLE_ADDR})"
    rf'|(?:"(?P<quoted>[^"\\()<>\[\]]*)"[ \t]*|(?P<atoms>{_SIMPLE_WORDS})[ \t]*)?'
    rf"<(?P<angle>{_SIMPLE_ADDR})>)[ \t]*(?:,|\Z)"
)


def _ascii_domain(domain: str) -> str | None:
    """The IDNA ASCII form of a lower-cased domain, or None when it cannot have one."""
    if domain.isascii():
        return domain
    try:  # imported here: only a non-ASCII domain needs it
        from idna import encode as idna_encode
    except ImportError:  # pragma: no cover - idna comes with the web stack, but is optional
        pass
    else:
        try:
            return idna_encode(domain, uts46=True, transitional=False).decode("ascii")
        except Exception:  # idna.IDNAError, UnicodeError: fall back to IDNA 2003
            pass
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def _valid_domain(domain: str) -> bool:
    if _IPV4_LITERAL.fullmatch(domain):
        return all(int(part) < 256 for part in domain[1:-1].split("."))
    if len(domain) > 253 or "." not in domain:
        return False
    return all(_LABEL.fullmatch(label) for label in domain.split("."))


def normalise(addr: str) -> str | None:
    """The canonical form of one address (`Jo@Bücher.Example` → `jo@xn--bcher-kva.example`).

    Returns None for anything that is not a plausible address: no `@`, an empty local part
    or domain, whitespace or control characters inside, any CR or LF (header injection,
    even at the ends), a dotless or
    malformed domain, a non-ASCII local part. Idempotent: `normalise(normalise(x)) ==
    normalise(x)` whenever the inner call returns a string.
    """
    if not isinstance(addr, str) or "\r" in addr or "\n" in addr:
        return None
    return _normalise(addr)


@lru_cache(maxsize=8192)  # the same few thousand addresses recur in every mailbox
def _normalise(addr: str) -> str | None:
    value = addr.strip(" \t")
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if value.startswith("@") and ":" in value:  # obsolete source route: <@relay:user@host>
        value = value.split(":", 1)[1]
    if not value or len(value) > _MAX_ADDRESS * 4:
        return None
    local, at, domain = value.rpartition("@")
    if '"' in local:  # "jhyatt"@x is jhyatt@x; what needed the quotes is rejected below
        local = _LOCAL_QUOTING.sub(lambda m: m.group(1) or "", local)
    if not at or not local or not domain:
        return None
    if not local.isascii() or _FORBIDDEN.search(local) or '"' in local or len(local) > 64:
        return None
    domain = domain.lower()
    if _IPV4_LITERAL.fullmatch(domain):
        return f"{local.lower()}@{domain}" if _valid_domain(domain) else None
    if _FORBIDDEN.search(domain):
        return None
    if domain.endswith("."):
        domain = domain[:-1]
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None or not _valid_domain(ascii_domain):
        return None
    result = f"{local.lower()}@{ascii_domain}"
    return result if len(result) <= _MAX_ADDRESS else None


def is_valid(addr: str) -> bool:
    """Whether `addr` is a plausible address (see `normalise`)."""
    return normalise(addr) is not None


def domain_of(addr: str) -> str:
    """The normalised domain of `addr` (`xn--bcher-kva.example`), or "" when `addr` is not a
    plausible address: junk is never attributed to a domain it merely mentions."""
    normalised = normalise(addr)
    return normalised.rpartition("@")[2] if normalised is not None else ""


def _clean_name(name: str, address: str) -> str:
    name = _CONTROL.sub(" ", decode_text(name))
    name = _WS.sub(" ", name).strip()
    while len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return "" if name.lower() == address else name


def _split_top_level(value: str) -> list[str]:
    """Split an address list at commas outside quotes, comments and angle brackets."""
    pieces: list[str] = []
    current: list[str] = []
    depth = 0  # comment nesting
    in_quote = in_angle = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (in_quote or depth):
            escaped = True
        elif in_quote:
            in_quote = ch != '"'
        elif depth:
            depth += (ch == "(") - (ch == ")")
        elif ch == '"':
            in_quote = True
        elif ch == "(":
            depth = 1
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch in ",;" and not in_angle:
            pieces.append("".join(current))
            current = []
            continue
        elif ch == ":" and not in_angle:  # group display name "team:" goes away
            current = []
            continue
        current.append(ch)
    pieces.append("".join(current))
    return [p for p in (p.strip() for p in pieces) if p]


def _lenient_pairs(value: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for piece in _split_top_level(value):
        parsed = getaddresses([piece], strict=True)
        if parsed and ("", "") not in parsed:
            pairs.extend(parsed)
            continue
        angles = _ANGLE.findall(piece)
        if len(angles) == 1:
            pairs.append((_ANGLE.sub(" ", piece), angles[0]))
        elif not angles and not _WS.search(piece):
            pairs.append(("", piece))
    return pairs


def _simple_pairs(value: str) -> list[tuple[str, str]] | None:
    """The (name, address) pairs of an everyday address list, or None if it is not one."""
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        match = _SIMPLE_ITEM.match(value, pos)
        if match is None:
            return None
        bare, quoted, atoms, angle = match.group("bare", "quoted", "atoms", "angle")
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((quoted if quoted is not None else atoms or "", angle))
        pos = match.end()
    return pairs or None


def _unfold(value: str) -> str:
    return _NEWLINE.sub(" ", value)


def parse_address_list(header_value: str) -> tuple[Address, ...]:
    """The usable mailboxes in an address header (From, To, Cc, ...), in order, deduplicated
    by normalised address; display names are RFC 2047-decoded. Never raises: entries that
    cannot be read are dropped, and a header with none gives ()."""
    if not header_value or not isinstance(header_value, str):
        return ()
    value = _unfold(header_value)  # raw 8-bit bytes stay escaped until names are decoded
    simple = _simple_pairs(value)
    if simple is not None:
        return _dedupe(simple)
    try:
        pairs = getaddresses([value], strict=True)
        if not pairs or ("", "") in pairs:
            pairs = _lenient_pairs(value)
    except Exception:  # getaddresses has raised on odd input before: be safe
        try:
            pairs = _lenient_pairs(value)
        except Exception:
            return ()
    return _dedupe(pairs)


def _dedupe(pairs: Iterable[tuple[str, str]]) -> tuple[Address, ...]:
    found: dict[str, str] = {}
    for raw_name, raw_addr in pairs:
        if "=?" in raw_addr:  # Python's own generator encodes IDN domains this way
            raw_addr = decode_text(raw_addr)
        address = normalise(to_text(raw_addr))
        if address is None:
            continue
        name = _clean_name(raw_name, address)
        if address not in found or (name and not found[address]):
            found[address] = name
    return tuple(Address(address=a, name=n) for a, n in found.items())
