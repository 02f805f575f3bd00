"""Step Functions Task -> local Lambda: names, error propagation, task tokens."""

from __future__ import annotations

import json
import time

from fake_lambda import FakeLambda, FunctionError, recorder
from sfn_helpers import create_machine, history, run, wait, wait_for

from localaws import LocalAws

INVOKE = "arn:aws:states:::lambda:invoke"
INVOKE_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"


def test_task_invokes_by_arn_or_name_and_gets_the_payload(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    fake_lambda.handlers["create-taskset"] = lambda e: {"id": e["deploymentId"], "got": e["request"]}
    fake_lambda.handlers["set-weight"] = lambda e: {"changedAt": "now", "percent": e["percent"]}
    machine = create_machine(
        aws,
        {
            "StartAt": "Create",
            "States": {
                "Create": {
                    "Type": "Task",
                    "Resource": INVOKE,
                    "Parameters": {
                        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:create-taskset",
                        "Payload": {"deploymentId.$": "$$.Execution.Name", "request.$": "$"},
                    },
                    "ResultSelector": {"d.$": "$.Payload"},
                    "ResultPath": "$.deployment",
                    "Next": "Weight",
                },
                "Weight": {
                    "Type": "Task",
                    "Resource": INVOKE,
                    "Parameters": {"FunctionName": "set-weight", "Payload": {"percent": 10}},
                    "ResultSelector": {"w.$": "$.Payload"},
                    "ResultPath": "$.weights",
                    "End": True,
                },
            },
        },
    )
    _, d = run(aws, machine, "dep-1", {"image": "app:2"})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["deployment"]["d"] == {"id": "dep-1", "got": {"image": "app:2"}}
    assert out["weights"]["w"]["percent"] == 10


def test_function_error_type_reaches_retry_and_catch(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    attempts = {"n": 0}

    def flaky(_e: object) -> dict:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise FunctionError("Retryable", "Route 53 change still processing")
        return {"ok": attempts["n"]}

    def gate(_e: object) -> dict:
        raise FunctionError("AlarmFiring", "orders-5xx in ALARM")

    fake_lambda.handlers["set-weight"] = flaky
    fake_lambda.handlers["check-health"] = gate
    machine = create_machine(
        aws,
        {
            "StartAt": "Weight",
            "States": {
                "Weight": {
                    "Type": "Task",
                    "Resource": INVOKE,
                    "Parameters": {"FunctionName": "set-weight", "Payload": {}},
                    "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}],
                    "ResultPath": "$.weights",
                    "Next": "Gate",
                },
                "Gate": {
                    "Type": "Task",
                    "Resource": INVOKE,
                    "Parameters": {"FunctionName": "check-health", "Payload": {}},
                    "Catch": [{"ErrorEquals": ["AlarmFiring"], "ResultPath": "$.error", "Next": "RolledBack"}],
                    "End": True,
                },
                "RolledBack": {"Type": "Fail", "Error": "RolledBack", "CausePath": "$.error.Cause"},
            },
        },
    )
    arn, d = run(aws, machine, "dep-2", {})
    assert d["status"] == "FAILED" and d["error"] == "RolledBack"
    assert json.loads(d["cause"]) == {"errorType": "AlarmFiring", "errorMessage": "orders-5xx in ALARM"}
    failed = [e["taskFailedEventDetails"] for e in history(aws, arn) if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failed] == ["Retryable", "Retryable", "AlarmFiring"]
    assert attempts["n"] == 3


def test_unknown_function_and_unreachable_lambda_are_lambda_errors(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    machine = create_machine(
        aws,
        {
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName": "no-such-fn", "Payload": {}}, "End": True}},
        },
    )
    _, d = run(aws, machine, "e1", {})
    assert d["status"] == "FAILED" and d["error"] == "Lambda.ResourceNotFoundException"
    aws.point_lambda("http://127.0.0.1:9")  # nothing listens on the discard port
    _, d = run(aws, machine, "e2", {})
    assert d["status"] == "FAILED" and d["error"] == "Lambda.ServiceException"


def _bake_machine(aws: LocalAws, function: str = "check-health") -> str:
    return create_machine(
        aws,
        {
            "StartAt": "Bake",
            "States": {
                "Bake": {
                    "Type": "Task",
                    "Resource": INVOKE_TOKEN,
                    "Parameters": {
                        "FunctionName": function,
                        "Payload": {
                            "check": "alarms",
                            "alarms.$": "$.alarms",
                            "since.$": "$.since",
                            "taskToken.$": "$$.Task.Token",
                            "rollback": {"slot": "blue"},
                        },
                    },
                    "TimeoutSecondsPath": "$.bakeSeconds",
                    "Catch": [
                        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.bake", "Next": "BakePassed"},
                        {"ErrorEquals": ["AlarmFiring"], "ResultPath": "$.error", "Next": "RolledBack"},
                    ],
                    "ResultPath": "$.bake",
                    "Next": "TokenSucceeded",
                },
                "BakePassed": {"Type": "Succeed"},
                "TokenSucceeded": {"Type": "Pass", "End": True},
                "RolledBack": {"Type": "Fail", "Error": "RolledBack", "CausePath": "$.error.Cause"},
            },
        },
    )


BAKE_INPUT = {"alarms": {"names": ["orders-5xx"]}, "since": "2026-11-27T10:00:00Z"}


def test_bake_timeout_from_timeout_seconds_path_means_passed(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    fake_lambda.handlers["check-health"] = lambda e: {"passed": True}
    machine = _bake_machine(aws)
    started = time.time()
    arn, d = run(aws, machine, "bake-1", {**BAKE_INPUT, "bakeSeconds": 1})
    assert d["status"] == "SUCCEEDED"
    assert 0.9 <= time.time() - started < 10
    types = [e["type"] for e in history(aws, arn)]
    assert "TaskSubmitted" in types and "TaskTimedOut" in types


def test_task_scheduled_event_carries_the_resolved_payload_with_the_token(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, {"passed": True}, key="taskToken")
    machine = _bake_machine(aws)
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="bake-2", input=json.dumps({**BAKE_INPUT, "bakeSeconds": 600}))["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    events = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
    scheduled = next(e for e in events if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]
    assert scheduled["resourceType"] == "lambda"
    assert scheduled["resource"] == "invoke.waitForTaskToken"
    assert scheduled["timeoutInSeconds"] == 600
    params = json.loads(scheduled["parameters"])
    assert params["FunctionName"] == "check-health"
    assert params["Payload"] == {
        "check": "alarms",
        "alarms": {"names": ["orders-5xx"]},
        "since": "2026-11-27T10:00:00Z",
        "taskToken": tokens[0],
        "rollback": {"slot": "blue"},
    }
    # the token read from history ends the bake at once, with its cause
    t0 = time.time()
    sfn.send_task_failure(taskToken=params["Payload"]["taskToken"], error="AlarmFiring", cause="orders-5xx went to ALARM")
    d = wait(aws, arn, 10)
    assert time.time() - t0 < 2
    assert d["status"] == "FAILED" and d["error"] == "RolledBack" and d["cause"] == "orders-5xx went to ALARM"
    failed = next(e for e in history(aws, arn) if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed == {
        "resourceType": "lambda",
        "resource": "invoke.waitForTaskToken",
        "error": "AlarmFiring",
        "cause": "orders-5xx went to ALARM",
    }


def test_send_task_success_ends_the_wait(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, key="taskToken")
    machine = _bake_machine(aws)
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="bake-3", input=json.dumps({**BAKE_INPUT, "bakeSeconds": 600}))["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    sfn.send_task_success(taskToken=tokens[0], output=json.dumps({"passed": True}))
    d = wait(aws, arn, 10)
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["bake"] == {"passed": True}


def test_function_error_in_the_token_invoke_fails_the_state(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    def refuse(_e: object) -> dict:
        raise FunctionError("AlarmFiring", "already in ALARM at bake start")

    fake_lambda.handlers["check-health"] = refuse
    machine = _bake_machine(aws)
    started = time.time()
    arn, d = run(aws, machine, "bake-4", {**BAKE_INPUT, "bakeSeconds": 600})
    assert time.time() - started < 10
    assert d["status"] == "FAILED" and d["error"] == "RolledBack"
    assert json.loads(d["cause"])["errorType"] == "AlarmFiring"
    types = [e["type"] for e in history(aws, arn)]
    assert "TaskSubmitted" not in types


def test_stop_execution_aborts_a_waiting_bake(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, key="taskToken")
    machine = _bake_machine(aws)
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="bake-5", input=json.dumps({**BAKE_INPUT, "bakeSeconds": 600}))["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by test")
    d = sfn.describe_execution(executionArn=arn)
    assert (d["status"], d.get("error"), d.get("cause")) == ("ABORTED", "Operator", "stopped by test")


def test_execution_history_pages_and_reverses(aws: LocalAws) -> None:
    machine = create_machine(
        aws,
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.a", "Next": "B"},
                "B": {"Type": "Pass", "Next": "C"},
                "C": {"Type": "Succeed"},
            },
        },
    )
    arn, d = run(aws, machine, "hist-1", {"in": 1})
    assert d["status"] == "SUCCEEDED"
    sfn = aws.client("stepfunctions")
    full = sfn.get_execution_history(executionArn=arn)["events"]
    assert full[0]["type"] == "ExecutionStarted" and full[-1]["type"] == "ExecutionSucceeded"
    newest_first = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
    assert [e["id"] for e in newest_first] == [e["id"] for e in reversed(full)]
    page = sfn.get_execution_history(executionArn=arn, maxResults=2)
    assert [e["id"] for e in page["events"]] == [e["id"] for e in full[:2]]
    rest = sfn.get_execution_history(executionArn=arn, maxResults=1000, nextToken=page["nextToken"])
    assert [e["id"] for e in rest["events"]] == [e["id"] for e in full[2:]] and "nextToken" not in rest
    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False)["events"]
    assert "input" not in bare[0]["executionStartedEventDetails"]
    assert "input" in full[0]["executionStartedEventDetails"]
