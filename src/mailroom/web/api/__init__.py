"""The REST API under /api/v1: Bearer-token auth, JSON, cursor pages, JSON errors."""

from __future__ import annotations

from fastapi import APIRouter

from mailroom.web.api import (
    admin,
    compose_extras,
    discovery,
    filtered,
    mailbox_setup,
    mailboxes,
    matching_settings,
    me,
    messages,
    notes,
    records,
    reports,
    rules_stored,
    sending,
    unmatched,
)

PREFIX = "/api/v1"
SECTIONS = (
    records,
    messages,
    sending,
    compose_extras,
    mailboxes,
    mailbox_setup,
    discovery,
    admin,
    notes,
    unmatched,
    me,
    reports,
    rules_stored,
    filtered,
    matching_settings,
)
router = APIRouter(prefix=PREFIX)
for section in SECTIONS:
    router.include_router(section.router)
