#!/usr/bin/env bash
# Creates bench/.venv: the interpreter of the Python + boto3 baseline, with
# only boto3 (bench/requirements-baseline.txt, pinned) — a Python Lambda
# function's environment, not the harness's big .venv. Fast when unchanged
# (a stamp holds a hash of the Python version and the requirements).
# PYTHON=/path/to/python3.x overrides the interpreter.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$BENCH/.venv"
STAMP="$VENV/.bench-setup.sha256"
REQ="$BENCH/requirements-baseline.txt"

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    for c in python3.11 python3.12 python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
    done
    echo "bench/setup.sh: no python3 found" >&2
    exit 1
}

PY="$(pick_python)"
want="$({ "$PY" -c 'import sys; print(sys.version_info[:2])'; cat "$REQ"; } | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
echo "bench/setup.sh: preparing $VENV" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ"
echo "$want" > "$STAMP"
echo "bench/setup.sh: done" >&2
