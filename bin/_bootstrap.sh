# Sourced by bin/mailroom and bin/test: make .venv with a Python that carries the `email`
# package's security fixes (CVE-2023-27043, CVE-2024-6923) and install Mailroom into it.
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

ensure_venv() {
    local extras="$1"
    local stamp="$VENV/.installed-$extras"
    if [ ! -x "$VENV/bin/python" ]; then
        local py; py="$(pick_python)"
        if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' 2>/dev/null; then
            if [ "$py" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            fi
        fi
        "$py" -m venv "$VENV"
        rm -f "$VENV"/.installed-*
    fi
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        if [ "$extras" = "dev" ]; then
            "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
        else
            "$VENV/bin/python" -m pip install -q -e "$ROOT"
        fi
        touch "$stamp"
    fi
}
