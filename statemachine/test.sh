#!/usr/bin/env bash
# Everything about the state machine, offline, in seconds: both validators,
# then the pytest suite in tests/statemachine/ (static checks, the branching
# run in moto's interpreter, the diagram). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

"$SM_DIR/validate.sh"
cd "$SM_DIR/.."
exec "$SM_PY" -m pytest -q tests/statemachine "$@"
