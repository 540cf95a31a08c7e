"""User-written regular expressions (rule conditions, extract patterns), run by RE2.

A pattern a user saves runs on every message of the company during sync, in the same
process as every other company's requests. Python's `re` backtracks: `(a+)+$` against a
30-byte subject takes minutes. RE2 (the `google-re2` package) matches in time linear in
the text, whatever the pattern, and refuses what it cannot run that way (backreferences,
lookahead and lookbehind). Patterns are compiled when the rule is saved, so such a
pattern is refused there, with the reason (`PatternError`), never during sync.

Every pattern is case-insensitive and `^`/`$` match at line breaks, as rules always were.
Named groups are written `(?P<name>…)` as in Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

FLAGS = "(?im)"
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason goes back to the user, not to stderr
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=|\\g<|\\k<")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says why, in words for the user."""


@dataclass(frozen=True, slots=True)
class Found:
    """A match: the named groups it captured (None for a group that did not take part)."""

    groups: Mapping[str, str | None]


@dataclass(frozen=True, eq=False, slots=True)
class Pattern:
    """A compiled pattern: `search` runs in time linear in the text."""

    text: str
    _regexp: Any

    @property
    def group_names(self) -> tuple[str, ...]:
        """The names of its named groups, in the order they open."""
        index: Mapping[str, int] = self._regexp.groupindex
        return tuple(sorted(index, key=index.__getitem__))

    def search(self, text: str) -> Found | None:
        """The first match anywhere in `text`, or None."""
        try:
            match = self._regexp.search(text)
        except UnicodeEncodeError:  # lone surrogates from undecodable mail bytes
            match = self._regexp.search(text.encode("utf-8", "replace").decode("utf-8"))
        if match is None:
            return None
        return Found(groups=dict(match.groupdict()))


def _reason(pattern: str, error: str) -> str:
    """Why RE2 refused `pattern`, in words (its own message is terse)."""
    if _BACKREFERENCE.search(pattern):
        return (
            "backreferences (\\1, (?P=name)) are not supported: rules run in RE2, "
            "which matches in linear time"
        )
    if _LOOKAROUND.search(pattern):
        return (
            "lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported: "
            "rules run in RE2, which matches in linear time"
        )
    return error


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """`pattern` compiled for RE2 (case-insensitive, multi-line); PatternError saying why not."""
    try:
        regexp = re2.compile(FLAGS + pattern, _OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else exc
        error = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise PatternError(_reason(pattern, error)) from None
    return Pattern(text=pattern, _regexp=regexp)
