#!/usr/bin/env bash
# Offline validation of deployment.asl.json with two validators that cover
# each other's gaps: npm asl-validator (paths, ARNs, unreachable states,
# unknown fields) and PyPI statelint (clearer messages, Float checks, ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# repairs.asl.json: the repair function's outcome records (issue 15).
for asl in "$SM_DIR/deployment.asl.json" "$SM_DIR/repairs.asl.json"; do
    "$SM_DIR/node_modules/.bin/asl-validator" --json-path "$asl"
    "$SM_DIR/.venv/bin/statelint" "$asl"
    echo "statelint: \"$(basename "$asl")\" is valid"
done
