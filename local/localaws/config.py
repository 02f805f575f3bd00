"""Fixed names and values of the local world: one account, one region, dummy
credentials, and where run-time files go."""

from __future__ import annotations

import os
from pathlib import Path

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ACCESS_KEY_ID = "localaws"
SECRET_ACCESS_KEY = "localaws"

STATE_MACHINE_NAME = "ecs-dns-canary"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"

# The bake registry (issue 17): check-health records each bake there and
# alarm-rollback looks bakes up by alarm name (shared/src/aws/bakes.rs). The
# local world creates it (canarytest.world.create_bake_table); its name
# reaches the functions as BAKE_TABLE.
BAKE_TABLE = "ecs-dns-canary-bakes"

# The function that receives CloudWatch alarm state change events (issue 7).
ALARM_EVENT_FUNCTION = "alarm-rollback"

# Marker the functions put in their User-Agent (aws-config reads
# AWS_SDK_UA_APP_ID and sends `app/<value>`): lets faults target only calls
# made by the functions, not the test's own boto3 calls.
FUNCTION_UA_APP_ID = "localaws-fn"
# Marker in the User-Agent of boto3 clients made by LocalAws.client().
HARNESS_UA_MARKER = "localaws-harness"

# How long moto's Step Functions interpreter waits for one Lambda invoke
# (a function's first call under `cargo lambda watch` compiles it).
LAMBDA_INVOKE_TIMEOUT_S = float(os.environ.get("LOCALAWS_LAMBDA_TIMEOUT", "900"))


def repo_root() -> Path:
    """The repository root: the parent of `local/`."""
    return Path(__file__).resolve().parents[2]


def default_run_dir() -> Path:
    return repo_root() / ".local" / "run"


def venv_bin() -> Path:
    return repo_root() / ".venv" / "bin"
