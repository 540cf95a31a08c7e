"""`move_notes_and_tasks`, the record merge's share of issue 13 item 4: every note and task
of the merged record moves onto the survivor, and nothing of another record moves."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.access import viewer_for
from mailroom.crm.companies import get_company, get_user
from mailroom.crm.records import add_record
from mailroom.db.engine import transaction
from mailroom.db.task_models import Note, Task
from mailroom.services.notes import add_note, move_notes_and_tasks
from mailroom.services.tasks import create_task
from tests.conftest_web import seed_tenant


def test_a_merge_moves_every_note_and_task_onto_the_survivor(
    sqlite_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    with transaction(sqlite_app.sessions) as session:
        viewer = viewer_for(session, get_user(session, alpha.admin))
        lead = add_record(
            session, company=get_company(session, "Alpha"), record_type="lead", name="Dup"
        )
        for text in ("one", "two"):
            add_note(
                session=session, viewer=viewer, record_type="lead", record_id=lead.id, text=text
            )
        create_task(
            session=session,
            viewer=viewer,
            record=f"lead:{lead.id}",
            title="t",
            due=date(2030, 1, 1),
        )
        add_note(
            session=session,
            viewer=viewer,
            record_type="account",
            record_id=alpha.account_id,
            text="stays",
        )
        lead_id = lead.id
    with transaction(sqlite_app.sessions) as session:
        moved = move_notes_and_tasks(session, from_id=lead_id, to_id=alpha.contact_id)
    assert moved == 3
    with sqlite_app.sessions() as session:
        notes = dict(session.execute(select(Note.text, Note.record_id)).all())
        tasks = list(session.scalars(select(Task.record_id)))
    assert notes == {"one": alpha.contact_id, "two": alpha.contact_id, "stays": alpha.account_id}
    assert tasks == [alpha.contact_id]
