"""The company's matching settings for admins: which mail is logged and how opportunities
link — list and automatic mail (bulk), the confidential subject words, the opportunity
policy, the records created per sender and day. The same `matching.policy` functions as
`mailroom rules settings`; here for Admin → Matching and `/api/v1/matching-settings`,
with the admin check (404 for members)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer, require_admin
from mailroom.db.models import Company
from mailroom.errors import NotFound
from mailroom.matching.policy import company_settings, settings_json, update_settings


def matching_settings(session: Session, *, viewer: Viewer) -> dict[str, object]:
    """The company's matching settings (the defaults when never changed)."""
    require_admin(viewer)
    return settings_json(company_settings(session, viewer.company_id))


def change_matching_settings(
    session: Session,
    *,
    viewer: Viewer,
    opportunity_policy: str | None = None,
    log_bulk: bool | None = None,
    confidential: Sequence[str] | None = None,
    max_created_per_sender: int | None = None,
) -> dict[str, object]:
    """Change the settings given (BadInput names a bad value); flushes, the caller commits.
    They apply to mail stored from now on; stored mail keeps how it was decided."""
    require_admin(viewer)
    company = session.get(Company, viewer.company_id)
    if company is None:
        raise NotFound("No such company.")
    row = update_settings(
        session,
        company=company,
        opportunity_policy=opportunity_policy,
        log_bulk=log_bulk,
        confidential=confidential,
        max_created_per_sender=max_created_per_sender,
    )
    return settings_json(row)
