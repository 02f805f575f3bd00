#!/usr/bin/env bash
# Offline checks of the infrastructure templates:
#   1. cfn-lint on every template, and `sam validate --lint` on the SAM one;
#   2. the SAM transform of template.yaml to CloudFormation, then checkov on
#      that and on service.yaml: zero failed checks (every skip has a written
#      reason: infra/.checkov.yaml or the resource's Metadata.checkov.skip);
#   3. pytest tests/infra: the ECR input transformer yields a valid
#      DeploymentRequest, service.yaml's outputs are exactly `target`, the
#      event patterns select what they should, the roles grant exactly the
#      calls the engine makes, every ${Key} of the ASL has a substitution.
# Installs its own pinned tools on first use (infra/.venv, infra/.venv-checkov).
# No network after that: checkov runs without one (see below).
set -euo pipefail

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$INFRA")"
cd "$ROOT"

# shellcheck source=venv.sh
source "$INFRA/venv.sh"
ensure_venv "$INFRA/.venv" "$INFRA/requirements-sam.txt"
ensure_venv "$INFRA/.venv-checkov" "$INFRA/requirements-checkov.txt"

# Run a command with no network at all where the machine lets us make a
# network namespace (root, or unprivileged user namespaces); otherwise as is.
offline() {
    if unshare -n true 2>/dev/null; then
        unshare -n "$@"
    elif unshare -rn true 2>/dev/null; then
        unshare -rn "$@"
    else
        "$@"
    fi
}

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

echo "== cfn-lint"
"$INFRA/.venv/bin/cfn-lint" infra/template.yaml infra/service.yaml

echo "== sam validate --lint"
offline "$INFRA/.venv/bin/sam" validate --lint -t infra/template.yaml

echo "== SAM transform -> CloudFormation"
"$INFRA/.venv/bin/python" infra/sam_to_cfn.py infra/template.yaml infra/.build/template.cfn.json

echo "== checkov"
# --skip-download (in the config) stops checkov fetching policies and
# guidelines from its platform; BC_SKIP_MAPPING stops the mapping lookup.
BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false offline \
    "$INFRA/.venv-checkov/bin/checkov" --config-file infra/.checkov.yaml \
    -f infra/.build/template.cfn.json -f infra/service.yaml

echo "== pytest tests/infra"
"$INFRA/.venv/bin/python" -m pytest -q tests/infra
