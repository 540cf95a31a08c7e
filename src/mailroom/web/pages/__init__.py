"""The server-rendered dashboard: one router per section, all hidden from the API schema."""

from __future__ import annotations

from fastapi import APIRouter

from mailroom.web.pages import (
    account,
    admin,
    admin_mail,
    admin_rules,
    auth,
    compose,
    mailbox_settings,
    mailboxes,
    messages,
    records,
    setup,
    tasks,
    unmatched,
)

SECTIONS = (
    auth,
    records,
    messages,
    compose,
    mailboxes,
    mailbox_settings,
    admin,
    admin_rules,
    admin_mail,
    account,
    setup,
    tasks,
    unmatched,
)
router = APIRouter(include_in_schema=False)
for section in SECTIONS:
    router.include_router(section.router)
