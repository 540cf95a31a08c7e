"""Mailroom's errors survive pickling whole (message, hint, kind, retry_after), as they must
to cross from a fetch worker process (sync/fetch_worker.py) to the sync."""

from __future__ import annotations

import pickle

from mailroom.errors import AuthenticationError


def test_errors_cross_the_process_boundary_whole() -> None:
    error = AuthenticationError("refused", hint="Use an app password.")
    error.retry_after = 30  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AuthenticationError
    assert (copy.message, copy.hint, copy.retry_after, copy.kind) == (
        "refused",
        "Use an app password.",
        30,
        error.kind,
    )
