"""Imports every model module, so `Base.metadata` knows every table.

Alembic's env.py, `open_app` and the schema test import this module; a new model module
is added here with one import line.
"""

from __future__ import annotations

from mailroom.db import (
    matching_models,  # noqa: F401
    models,
    oauth_models,  # noqa: F401
    outbox_models,  # noqa: F401
    run_models,  # noqa: F401
    task_models,  # noqa: F401
    web_models,  # noqa: F401
)
from mailroom.db.models import Base

__all__ = ["Base", "models"]
