#!/usr/bin/env bash
# Creates (or refreshes) the project's Python environment at <repo>/.venv with
# the pinned local-AWS toolchain (local/requirements.txt) and makes the
# `localaws` package importable from it.
#
# Idempotent and fast when nothing changed: a stamp file in the venv holds a
# hash of the Python version and of every requirements file installed; when
# it matches, the script exits at once.
#
# Usage: local/setup.sh [EXTRA_REQUIREMENTS_FILE ...]
#   PYTHON=/path/to/python3.11 overrides the interpreter used to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.localaws-setup.sha256"
REQS=("$ROOT/local/requirements.txt" "$@")

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    for c in python3.11 python3.12 python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
    done
    echo "setup.sh: no python3 found (need 3.11+)" >&2
    exit 1
}

# unbound: the caching resolver the local AWS runs between clients and its
# DNS server (as the VPC resolver sits between tasks and Route 53). A Debian
# package, installed here when missing (CI runs as root); without it the
# commands that need DNS stop with a message naming the package.
ensure_unbound() {
    if command -v unbound >/dev/null 2>&1; then return 0; fi
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: unbound is not installed; install the Debian package 'unbound' (apt-get install unbound) for the local DNS resolver" >&2
        return 0
    fi
    echo "setup.sh: installing unbound (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends unbound >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        apt-get install -y --no-install-recommends unbound >/dev/null 2>&1 \
            || echo "setup.sh: could not install unbound; install the Debian package 'unbound' for the local DNS resolver" >&2
    fi
}
ensure_unbound

PY="$(pick_python)"
want="$({ "$PY" -c 'import sys; print(sys.version_info[:2])'; cat "${REQS[@]}"; } | sha256sum | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi

echo "setup.sh: preparing $VENV" >&2
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
for r in "${REQS[@]}"; do
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$r"
done

# Make `import localaws` work from the venv without installing a package.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$ROOT/local" > "$SITE/localaws-src.pth"

echo "$want" > "$STAMP"
echo "setup.sh: done" >&2
