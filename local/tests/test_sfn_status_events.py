"""Step Functions execution status change events (patches/sfn_status_events.py):
built as EventBridge sends them and delivered to `repair` only for what the
system stack's rule matches (ABORTED, TIMED_OUT, FAILED of `ecs-dns-canary`)."""

from __future__ import annotations

import json
import time

from fake_lambda import FakeLambda, recorder
from sfn_helpers import create_machine, run, wait, wait_for

from localaws import LocalAws


def of(events: list[dict], *arns: str) -> list[dict]:
    """The events of these executions only: the session's local AWS is shared,
    and an execution an earlier test left running (on a state machine also
    named ecs-dns-canary) may end, and be delivered, during this one."""
    return [e for e in events if e["detail"]["executionArn"] in arns]

FAIL = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "RolledBackOnError", "Cause": "because"}}}
OK = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
WAIT = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}


def test_a_failed_execution_of_the_deployment_state_machine_reaches_repair(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["repair"] = recorder(events, {"action": "left"})
    machine = create_machine(aws, FAIL)
    arn, d = run(aws, machine, "orders-v2", {"target": "x"})
    assert d["status"] == "FAILED"
    wait_for(lambda: of(events, arn), 5, "status change event")
    ev = of(events, arn)[0]
    assert ev["source"] == "aws.states" and ev["detail-type"] == "Step Functions Execution Status Change"
    assert ev["resources"] == [arn]
    det = ev["detail"]
    assert det["executionArn"] == arn and det["stateMachineArn"] == machine and det["name"] == "orders-v2"
    assert det["status"] == "FAILED"
    assert det["error"] == "RolledBackOnError" and det["cause"] == "because"
    assert json.loads(det["input"]) == {"target": "x"}
    assert isinstance(det["startDate"], int) and det["stopDate"] >= det["startDate"]
    deliveries = wait_for(
        lambda: [x for x in aws.sfn_status_events()["deliveries"] if x.get("completedAt") and x["executionArn"] == arn], 5, "log"
    )
    assert deliveries[0]["result"] == "ok" and deliveries[0]["response"] == {"action": "left"}


def test_only_what_the_rule_matches_is_delivered(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["repair"] = recorder(events)
    ok = create_machine(aws, OK)
    other = create_machine(aws, FAIL, name="someone-else")
    fine, d = run(aws, ok, "fine", {})
    assert d["status"] == "SUCCEEDED"
    theirs, d = run(aws, other, "theirs", {})
    assert d["status"] == "FAILED"
    time.sleep(1.0)
    assert of(events, fine, theirs) == []
    assert [x for x in aws.sfn_status_events()["deliveries"] if x["executionArn"] in (fine, theirs)] == []


def test_stop_execution_is_delivered_aborted_and_can_be_switched_off_and_redelivered(
    aws: LocalAws, fake_lambda: FakeLambda
) -> None:
    events: list[dict] = []
    fake_lambda.handlers["repair"] = recorder(events)
    machine = create_machine(aws, WAIT)
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="stopped", input="{}")["executionArn"]
    sfn.stop_execution(executionArn=arn, error="RolledBackOnAbort", cause="aborted by me")
    assert wait(aws, arn)["status"] == "ABORTED"
    wait_for(lambda: of(events, arn), 5, "ABORTED event")
    ev = of(events, arn)[0]
    assert ev["detail"]["status"] == "ABORTED"
    assert ev["detail"]["error"] == "RolledBackOnAbort" and ev["detail"]["cause"] == "aborted by me"

    aws.sfn_status_events(enabled=False)
    arn2 = sfn.start_execution(stateMachineArn=machine, name="lost", input="{}")["executionArn"]
    sfn.stop_execution(executionArn=arn2)
    dropped = wait_for(
        lambda: [x for x in aws.sfn_status_events()["deliveries"] if x["executionArn"] == arn2], 5, "dropped entry"
    )
    assert dropped[0]["result"] == "dropped" and of(events, arn2) == []

    aws.redeliver_sfn_status_event(dropped[0]["eventId"])
    wait_for(lambda: of(events, arn2), 5, "redelivery")
    assert len(of(events, arn, arn2)) == 2


def test_a_function_error_is_retried_twice_as_lambda_retries_an_asynchronous_invocation(
    aws: LocalAws, fake_lambda: FakeLambda
) -> None:
    """Lambda Developer Guide, "Error handling and automatic retries in
    Lambda": an asynchronous invocation that returns a function error runs
    two more times (1 and 2 minutes later in AWS; a setting here)."""
    from fake_lambda import FunctionError

    events: list[dict] = []

    def flaky(e: dict) -> dict:
        events.append(e)
        if len(of(events, e["detail"]["executionArn"])) < 3:
            raise FunctionError("Retryable", "throttled")
        return {"action": "restored"}

    fake_lambda.handlers["repair"] = flaky
    aws._control("POST", "sfn-status-events", {"retryDelaysSeconds": [0.1, 0.2]})
    try:
        machine = create_machine(aws, FAIL)
        arn, d = run(aws, machine, "flaky-v2", {})
        assert d["status"] == "FAILED"
        done = wait_for(
            lambda: [x for x in aws.sfn_status_events()["deliveries"] if x.get("completedAt") and x["executionArn"] == arn], 10, "log"
        )
        assert [a["result"] for a in done[0]["attempts"]] == ["error", "error", "ok"]
        assert done[0]["result"] == "ok" and done[0]["response"] == {"action": "restored"}
        assert len({e["id"] for e in of(events, arn)}) == 1  # the same event each time

        # Never more than two retries.
        fake_lambda.handlers["repair"] = lambda e: (_ for _ in ()).throw(FunctionError("AwsError", "denied"))
        arn2, _ = run(aws, machine, "denied-v2", {})
        done2 = wait_for(
            lambda: [x for x in aws.sfn_status_events()["deliveries"] if x.get("completedAt") and x["executionArn"] == arn2], 10, "log"
        )
        assert [a["result"] for a in done2[0]["attempts"]] == ["error"] * 3 and done2[0]["errorType"] == "AwsError"
    finally:
        aws._control("POST", "sfn-status-events", {"retryDelaysSeconds": [1, 2]})
