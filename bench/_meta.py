"""What every benchmark result file records about the run that produced it.

A figure in bench/results/ is only comparable with another if both say which code and
which packages produced them, so every bench script writes its JSON through
`write_result`, which adds a ``"meta"`` block from `run_metadata`:

    from bench._meta import write_result          # repo root on sys.path
    write_result("sync-100000", {"messages": 100000, "results": ...})

``meta`` holds: ``commit`` (``git rev-parse HEAD``) and ``dirty`` (uncommitted changes to
tracked files outside bench/results/, so the figure may not be that commit's), ``recorded_at``
(UTC), ``python`` (version, implementation, executable), ``sqlite`` (the library's version,
which the SQLite figures depend on), ``platform``, ``cpus``, ``lock_sha256`` (of
requirements-dev.lock, the environment bin/test installs) and ``packages``: the installed
version of Mailroom and of each of its runtime dependencies (read from Mailroom's own
metadata, so a new dependency is recorded without editing this file) plus a few that
matter to the figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

# Not declared by Mailroom but behind its figures: the web stack and the compiled parts.
EXTRA_PACKAGES = ("mailroom", "starlette", "pydantic", "pydantic-core", "psycopg-binary")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def package_versions() -> dict[str, str | None]:
    """Installed versions of Mailroom's runtime dependencies and EXTRA_PACKAGES (None: absent)."""
    try:
        requires = metadata.requires("mailroom") or []
    except metadata.PackageNotFoundError:
        requires = []
    names = {
        re.split(r"[\s\[;<>=!~]", line, maxsplit=1)[0].lower()
        for line in requires
        if "extra ==" not in line
    }
    names.update(EXTRA_PACKAGES)
    versions: dict[str, str | None] = {}
    for name in sorted(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_metadata() -> dict[str, Any]:
    """The commit, interpreter and package versions of this run (see the module docstring)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
    lock = REPO / "requirements-dev.lock"
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None,
        "packages": package_versions(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write bench/results/NAME.json: DATA plus a "meta" block; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**data, "meta": run_metadata()}, indent=2) + "\n")
    return path
