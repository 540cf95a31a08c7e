"""Storage: the engine and sessions, the SQLAlchemy models, the Alembic migrations."""
