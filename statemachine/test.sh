#!/usr/bin/env bash
# Everything about the state machine, offline, in seconds: both validators,
# then the pytest suite in tests/statemachine/ (static checks, the branching
# run in moto's interpreter, the diagram). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

"$SM_DIR/validate.sh"
cd "$SM_DIR/.."
# The pytest suite imports the local AWS (`localaws`: the deployment events'
# capture) and the test support package (`canarytest`: the contract), with
# moto and jsonschema at the same pins: it runs in the project venv that
# local/setup.sh makes (idempotent), not in statemachine/.venv (the
# validators' tools).
local/setup.sh >&2
exec .venv/bin/python -m pytest -q tests/statemachine "$@"
