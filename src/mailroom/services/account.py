"""The signed-in user's own settings: the time zone their pages show times in.

One behaviour for the account page, the browser's first-page report and `PATCH
/api/v1/me`: a zone is an IANA name the machine's zone database knows (`Europe/Paris`,
`UTC`); anything else is refused with the field named. The browser's report
(`only_if_unset`) never overrides a zone the user chose
(docs/decisions/0027-times-in-the-viewers-time-zone.md).
"""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy.orm import Session

from mailroom.db.models import User
from mailroom.errors import BadInput

MAX_ZONE = 64


@cache
def time_zones() -> tuple[str, ...]:
    """Every zone name a user may choose, sorted (the account page's list)."""
    return tuple(sorted(available_timezones() | {"UTC"}))


def check_time_zone(time_zone: str) -> str:
    """The zone name, or `BadInput` naming the field when the zone database lacks it."""
    name = time_zone.strip()
    if len(name) > MAX_ZONE or name not in time_zones():
        raise BadInput(
            f"time_zone: {time_zone[:MAX_ZONE]!r} is not a time zone.",
            hint="Use an IANA zone name such as Europe/Paris, America/New_York or UTC.",
        )
    return name


def set_time_zone(
    session: Session, *, user: User, time_zone: str, only_if_unset: bool = False
) -> bool:
    """Set the zone `user`'s pages show times in; with `only_if_unset` (the browser's own
    zone, sent once) only when none is set yet. Returns whether it changed. Flushed; the
    caller commits."""
    name = check_time_zone(time_zone)
    if only_if_unset and user.time_zone is not None:
        return False
    changed = user.time_zone != name
    user.time_zone = name
    session.flush()
    return changed


def me_json(user: User) -> dict[str, Any]:
    """The signed-in user as the API answers it (`GET /api/v1/me`)."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "time_zone": user.time_zone,
    }
