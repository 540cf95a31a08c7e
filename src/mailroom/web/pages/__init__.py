"""The server-rendered dashboard: one router per section, all hidden from the API schema."""

from __future__ import annotations

from fastapi import APIRouter

from mailroom.web.pages import account, admin, auth, mailboxes, messages, records

SECTIONS = (auth, records, messages, mailboxes, admin, account)
router = APIRouter(include_in_schema=False)
for section in SECTIONS:
    router.include_router(section.router)
