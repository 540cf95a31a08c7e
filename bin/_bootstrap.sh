# Sourced by bin/mailroom, bin/test and bin/lock: make .venv with a Python that carries the
# `email` package's security fixes (CVE-2023-27043, CVE-2024-6923) and install Mailroom into
# it exactly as locked: requirements.lock for `bin/mailroom`, requirements-dev.lock (runtime
# + dev tools, same runtime versions) for `bin/test`, every file checked against its sha256.
# The installer is uv, itself pinned and hash-checked by requirements-uv.lock and kept in
# .venv/.uv, outside the environment it manages (docs/decisions/0008-lock-file-with-uv.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

pick_python() {
    # Debian's /usr/bin/python3 (3.11.2+deb12u6) and CPython 3.13 carry the fixes;
    # pyenv's 3.11.7 / 3.12.1 do not, so PATH's python3 is never trusted blindly.
    local probe='import email.utils, email.policy, sys; sys.exit(0 if hasattr(email.utils, "supports_strict_parsing") and hasattr(email.policy.default, "verify_generated_headers") and sys.version_info >= (3, 11) else 1)'
    for candidate in "${MAILROOM_PYTHON:-}" /usr/bin/python3 /usr/bin/python3.13 /usr/local/bin/python3.13 "$(command -v python3.13 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "$probe" 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "No Python 3.11+ with the email security fixes found. Install Debian's python3 (apt-get install python3 python3-venv) or CPython 3.13, or set MAILROOM_PYTHON." >&2
    return 1
}

make_venv() {
    [ -x "$VENV/bin/python" ] && return 0
    local py; py="$(pick_python)"
    if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' 2>/dev/null; then
        if [ "$py" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
    fi
    "$py" -m venv "$VENV"
    rm -rf "$VENV"/.installed-* "$VENV/.uv"
}

# sha256 of the named files' contents together: a stamp that changes whenever one does
# (an mtime alone misses a checkout that restores an older lock).
files_hash() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

# Sets UV to the pinned uv, installing it (pip, --require-hashes) when missing or re-pinned.
ensure_uv() {
    make_venv
    UV="$VENV/.uv/bin/uv"
    local want; want="$(files_hash "$ROOT/requirements-uv.lock")"
    if [ ! -x "$UV" ] || [ "$(cat "$VENV/.uv/.stamp" 2>/dev/null)" != "$want" ]; then
        rm -rf "$VENV/.uv"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
            --no-deps --target "$VENV/.uv" -r "$ROOT/requirements-uv.lock"
        echo "$want" > "$VENV/.uv/.stamp"
    fi
}

# ensure_venv runtime|dev: make .venv hold exactly the lock's packages, then Mailroom itself
# (editable, --no-deps). Re-syncs when the lock or pyproject.toml changes; packages the lock
# no longer names are removed.
ensure_venv() {
    local extras="$1" lock=requirements.lock
    [ "$extras" = dev ] && lock=requirements-dev.lock
    make_venv
    # The dev lock holds the runtime lock's versions, so a venv synced for the tests also
    # serves `mailroom` (and bin/mailroom does not strip the tools that bin/test installed).
    if [ "$extras" != dev ] && [ -f "$VENV/.installed-dev" ] \
        && [ "$(cat "$VENV/.installed-dev")" = "$(files_hash "$ROOT/requirements-dev.lock" "$ROOT/pyproject.toml")" ]; then
        return 0
    fi
    local want; want="$(files_hash "$ROOT/$lock" "$ROOT/pyproject.toml")"
    if [ "$(cat "$VENV/.installed-$extras" 2>/dev/null)" != "$want" ]; then
        ensure_uv
        echo "Installing $lock into .venv" >&2
        rm -f "$VENV"/.installed-*
        "$UV" pip sync --quiet --python "$VENV/bin/python" --require-hashes "$ROOT/$lock"
        "$UV" pip install --quiet --python "$VENV/bin/python" --no-deps -e "$ROOT"
        echo "$want" > "$VENV/.installed-$extras"
    fi
}
