from __future__ import annotations

import json
import time
from typing import Any

from localaws import LocalAws

ROLE = "arn:aws:iam::123456789012:role/sfn"


def create_machine(aws: LocalAws, definition: dict[str, Any], name: str = "ecs-dns-canary") -> str:
    return aws.client("stepfunctions").create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]


def run(aws: LocalAws, machine: str, name: str, payload: Any, timeout: float = 30.0) -> tuple[str, dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))["executionArn"]
    return arn, wait(aws, arn, timeout)


def wait(aws: LocalAws, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.time() + timeout
    while True:
        d = sfn.describe_execution(executionArn=execution_arn)
        if d["status"] != "RUNNING" or time.time() > deadline:
            return d
        time.sleep(0.05)


def history(aws: LocalAws, execution_arn: str) -> list[dict[str, Any]]:
    return aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def wait_for(pred: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
