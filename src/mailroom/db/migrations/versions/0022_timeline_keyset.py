"""message_links.message_date: the linked message's date on the link, for a keyset timeline

Revision ID: 0022
Revises: 0021

Issue 15, item 3. A record's timeline is its links ordered by the message's date (newest
first, then id); with the date only on `messages`, every page joined and sorted all of the
record's links, so the page grew with the record's history. The date is now copied onto
the link, and `ix_message_links_record_date` (record_id, message_date, message_id) hands
out any page in order by walking the index (keyset), whatever the record's size. It
replaces `ix_message_links_record`, whose column it starts with.

Triggers keep the copy right, so no writer can forget or get it wrong: inserting a link
(or pointing it at another message) takes the message's date, and a message whose date
changes passes it to its links. Existing links are filled in here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE TRIGGER message_links_date_insert AFTER INSERT ON message_links
    BEGIN
        UPDATE message_links SET message_date =
            (SELECT date_utc FROM messages WHERE messages.id = NEW.message_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER message_links_date_update AFTER UPDATE OF message_id, message_date
    ON message_links
    WHEN NEW.message_date IS NOT
         (SELECT date_utc FROM messages WHERE messages.id = NEW.message_id)
    BEGIN
        UPDATE message_links SET message_date =
            (SELECT date_utc FROM messages WHERE messages.id = NEW.message_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER messages_date_links AFTER UPDATE OF date_utc ON messages
    WHEN OLD.date_utc IS NOT NEW.date_utc
    BEGIN
        UPDATE message_links SET message_date = NEW.date_utc WHERE message_id = NEW.id;
    END""",
]

POSTGRESQL = [
    """CREATE FUNCTION message_links_date() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.message_date := (SELECT date_utc FROM messages WHERE messages.id = NEW.message_id);
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER message_links_date BEFORE INSERT OR UPDATE OF message_id, message_date
    ON message_links FOR EACH ROW EXECUTE FUNCTION message_links_date()""",
    """CREATE FUNCTION messages_date_links() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE message_links SET message_date = NEW.date_utc WHERE message_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER messages_date_links AFTER UPDATE OF date_utc ON messages
    FOR EACH ROW WHEN (OLD.date_utc IS DISTINCT FROM NEW.date_utc)
    EXECUTE FUNCTION messages_date_links()""",
]


def upgrade() -> None:
    with op.batch_alter_table("message_links") as batch_op:
        batch_op.add_column(sa.Column("message_date", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE message_links SET message_date ="
        " (SELECT date_utc FROM messages WHERE messages.id = message_links.message_id)"
    )
    with op.batch_alter_table("message_links") as batch_op:
        batch_op.create_index(
            "ix_message_links_record_date", ["record_id", "message_date", "message_id"]
        )
        batch_op.drop_index("ix_message_links_record")
    statements = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER messages_date_links ON messages")
        op.execute("DROP FUNCTION messages_date_links()")
        op.execute("DROP TRIGGER message_links_date ON message_links")
        op.execute("DROP FUNCTION message_links_date()")
    else:
        for name in ("messages_date_links", "message_links_date_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TRIGGER message_links_date_insert")
    with op.batch_alter_table("message_links") as batch_op:
        batch_op.create_index("ix_message_links_record", ["record_id"])
        batch_op.drop_index("ix_message_links_record_date")
        batch_op.drop_column("message_date")
