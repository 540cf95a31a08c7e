"""procrastinate: the job queue of `mailroom worker` (PostgreSQL only)

Revision ID: 0019
Revises: 0018

On PostgreSQL, applies the schema of the pinned Procrastinate (its tables, types and
functions, `procrastinate_*`) in the same transaction as Mailroom's migrations, so
`mailroom init` and every start bring both up together. On SQLite it does nothing: the
embedded mode never uses Procrastinate. When the Procrastinate pin moves to a release with
schema changes, a new migration here applies its delta files
(`procrastinate/sql/migrations/`), keeping the two in step (decision 0020).
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
TYPES = (
    "procrastinate_job_to_defer_v1",
    "procrastinate_job_event_type",
    "procrastinate_job_status",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is not None:
        return  # applied by hand before Mailroom managed it: leave it as it is
    from procrastinate.schema import SchemaManager

    # The raw psycopg connection, without parameters: the SQL's `%` and `:name` stay text.
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for type_ in TYPES:  # CASCADE drops the functions that take or return them
        op.execute(f"DROP TYPE IF EXISTS {type_} CASCADE")
    op.execute(
        "DO $$ DECLARE f record; BEGIN "
        "FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc "
        "WHERE proname LIKE 'procrastinate%' LOOP "
        "EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE'; END LOOP; END $$"
    )
