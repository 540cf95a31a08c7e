"""The server-rendered dashboard: one router per section, all hidden from the API schema."""

from __future__ import annotations

from fastapi import APIRouter

from mailroom.web.pages import (
    account,
    admin,
    admin_mail,
    admin_matching,
    admin_rules,
    admin_rules_stored,
    auth,
    compose,
    discovery,
    filtered,
    mailbox_settings,
    mailboxes,
    messages,
    oauth,
    records,
    reports,
    setup,
)

SECTIONS = (
    auth,
    records,
    filtered,
    reports,
    messages,
    compose,
    discovery,
    mailboxes,
    mailbox_settings,
    oauth,
    admin,
    admin_rules,
    admin_rules_stored,
    admin_mail,
    admin_matching,
    account,
    setup,
)
router = APIRouter(include_in_schema=False)
for section in SECTIONS:
    router.include_router(section.router)
