#!/usr/bin/env bash
# Installs (once) what the state machine's checks need, pinned:
#   statemachine/.venv         Python venv from requirements.txt (moto, pytest, statelint)
#   statemachine/node_modules  asl-validator from package-lock.json
# Idempotent: each part is reinstalled only when its pin file changed.
# Source it (it sets SM_DIR and SM_PY) or run it.
set -euo pipefail

SM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SM_PY="$SM_DIR/.venv/bin/python"

_sm_stamp() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

_sm_python() {
  local want have=""
  want="$(_sm_stamp "$SM_DIR/requirements.txt")"
  [[ -f "$SM_DIR/.venv/.stamp" ]] && have="$(cat "$SM_DIR/.venv/.stamp")"
  if [[ ! -x "$SM_PY" || "$want" != "$have" ]]; then
    echo "statemachine: installing Python tools into statemachine/.venv" >&2
    python3 -m venv "$SM_DIR/.venv"
    "$SM_PY" -m pip install --quiet --disable-pip-version-check -r "$SM_DIR/requirements.txt"
    echo "$want" > "$SM_DIR/.venv/.stamp"
  fi
}

_sm_node() {
  local want have=""
  want="$(_sm_stamp "$SM_DIR/package.json" "$SM_DIR/package-lock.json")"
  [[ -f "$SM_DIR/node_modules/.stamp" ]] && have="$(cat "$SM_DIR/node_modules/.stamp")"
  if [[ ! -x "$SM_DIR/node_modules/.bin/asl-validator" || "$want" != "$have" ]]; then
    echo "statemachine: installing asl-validator into statemachine/node_modules" >&2
    (cd "$SM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$SM_DIR/node_modules/.stamp"
  fi
}

_sm_python
_sm_node
