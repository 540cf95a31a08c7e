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
    aliases,
    auth,
    compose,
    discovery,
    filtered,
    mailbox_settings,
    mailboxes,
    messages,
    oauth,
    outbox,
    record_forms,
    records,
    reports,
    setup,
    tasks,
    unmatched,
)

SECTIONS = (
    auth,
    records,
    record_forms,
    filtered,
    reports,
    messages,
    compose,
    outbox,
    discovery,
    mailboxes,
    mailbox_settings,
    oauth,
    admin,
    admin_rules,
    admin_rules_stored,
    admin_mail,
    aliases,
    admin_matching,
    account,
    setup,
    tasks,
    unmatched,
)
router = APIRouter(include_in_schema=False)
for section in SECTIONS:
    router.include_router(section.router)
