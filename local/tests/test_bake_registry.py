"""The local AWS behind the bake registry (issue 17): DynamoDB TTL deletes
expired items only at a sweep (reads see them until then), conditional
writes answer ConditionalCheckFailedException, SendTaskHeartbeat tells
whether a token still waits, and Step Functions' API limits throttle."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from no_retry import no_retry_client
from fake_lambda import FakeLambda, recorder
from sfn_helpers import create_machine, wait, wait_for
from test_sfn_lambda import BAKE_INPUT, INVOKE_TOKEN, _bake_machine

from localaws import LocalAws

TABLE = "bakes-test"


def _table(aws: LocalAws) -> Any:
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "alarmName", "AttributeType": "S"},
                              {"AttributeName": "execution", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "alarmName", "KeyType": "HASH"},
                   {"AttributeName": "execution", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
    return ddb


def _put(ddb: Any, execution: str, expires_at: int) -> None:
    ddb.put_item(TableName=TABLE, Item={"alarmName": {"S": "a"}, "execution": {"S": execution},
                                        "expiresAt": {"N": str(expires_at)}})


def _executions(ddb: Any) -> list[str]:
    items = ddb.query(TableName=TABLE, KeyConditionExpression="alarmName = :a",
                      ExpressionAttributeValues={":a": {"S": "a"}}, ConsistentRead=True)["Items"]
    return sorted(i["execution"]["S"] for i in items)


def test_ttl_deletes_expired_items_only_at_a_sweep(aws: LocalAws) -> None:
    aws.dynamodb_ttl(sweep_seconds=3600)  # no background sweep during the test
    ddb = _table(aws)
    now = int(time.time())
    _put(ddb, "expired", now - 10)
    _put(ddb, "live", now + 600)
    _put(ddb, "ancient", now - 6 * 365 * 24 * 3600)  # > 5 years past: never deleted by TTL
    # Until TTL's background process runs, reads still return expired items.
    assert _executions(ddb) == ["ancient", "expired", "live"]
    status = aws.dynamodb_ttl(sweep_now=True)
    assert status["sweptNow"] == 1
    assert _executions(ddb) == ["ancient", "live"]


def test_ttl_delay_keeps_items_until_it_has_passed(aws: LocalAws) -> None:
    aws.dynamodb_ttl(sweep_seconds=3600, delay_seconds=60)
    ddb = _table(aws)
    now = int(time.time())
    _put(ddb, "recent", now - 10)
    _put(ddb, "old", now - 120)
    aws.dynamodb_ttl(sweep_now=True)
    assert _executions(ddb) == ["recent"]


def test_a_table_without_ttl_is_never_swept(aws: LocalAws) -> None:
    aws.dynamodb_ttl(sweep_seconds=3600)
    ddb = aws.client("dynamodb")
    ddb.create_table(TableName="plain", AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="plain", Item={"k": {"S": "x"}, "expiresAt": {"N": "1"}})
    aws.dynamodb_ttl(sweep_now=True)
    assert ddb.get_item(TableName="plain", Key={"k": {"S": "x"}}).get("Item")


def test_conditional_write_refuses_an_older_bake(aws: LocalAws) -> None:
    ddb = _table(aws)
    item = {"alarmName": {"S": "a"}, "execution": {"S": "e"}, "startedAt": {"N": "200"}, "expiresAt": {"N": "9999999999"}}
    cond = "attribute_not_exists(alarmName) OR startedAt <= :started"
    ddb.put_item(TableName=TABLE, Item=item, ConditionExpression=cond, ExpressionAttributeValues={":started": {"N": "200"}})
    older = {**item, "startedAt": {"N": "100"}}
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=TABLE, Item=older, ConditionExpression=cond, ExpressionAttributeValues={":started": {"N": "100"}})
    assert e.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_heartbeat_tells_whether_the_bake_still_waits(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    """The Bake sets no HeartbeatSeconds: SendTaskHeartbeat still succeeds
    while it waits, and fails once its token was used."""
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, key="taskToken")
    machine = _bake_machine(aws)
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="hb-1", input=json.dumps({**BAKE_INPUT, "bakeSeconds": 600}))["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    sfn.send_task_heartbeat(taskToken=tokens[0])
    sfn.send_task_success(taskToken=tokens[0], output="{}")
    assert wait(aws, arn, 10)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as e:
        sfn.send_task_heartbeat(taskToken=tokens[0])
    assert e.value.response["Error"]["Code"] in ("TaskDoesNotExist", "InvalidToken", "TaskTimedOut")
    with pytest.raises(ClientError) as e:
        sfn.send_task_heartbeat(taskToken="not-a-token")
    assert e.value.response["Error"]["Code"] == "InvalidToken"


def test_step_functions_rate_limit_throttles_get_execution_history(aws: LocalAws) -> None:
    machine = create_machine(aws, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="rl-1", input="{}")["executionArn"]
    status = aws.stepfunctions_rate_limit(True, rates={"GetExecutionHistory": 1}, burst={"GetExecutionHistory": 2})
    assert status["rates"]["GetExecutionHistory"] == 1 and status["rates"]["ListExecutions"] == 5
    raw = no_retry_client(aws, "stepfunctions")
    codes = []
    for _ in range(4):
        try:
            raw.get_execution_history(executionArn=arn)
            codes.append("ok")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
    assert codes[:2] == ["ok", "ok"] and "ThrottlingException" in codes[2:], codes
    throttled = [c for c in aws.calls(service="stepfunctions", operation="GetExecutionHistory") if c.get("fault")]
    assert throttled and throttled[0]["fault"]["reason"] == "stepfunctions-rate-limit"
    aws.stepfunctions_rate_limit(False)
    raw.get_execution_history(executionArn=arn)


def _bake_then_hold(aws: LocalAws, bake: dict[str, Any]) -> str:
    """A state machine whose Bake waits for its token (check-health), then
    a 60-s Wait keeps the execution RUNNING; ``bake`` adds to the Bake state."""
    return create_machine(aws, {
        "StartAt": "Bake",
        "States": {
            "Bake": {
                "Type": "Task",
                "Resource": INVOKE_TOKEN,
                "Parameters": {"FunctionName": "check-health", "Payload": {"check": "alarms", "taskToken.$": "$$.Task.Token"}},
                "Next": "Hold",
                **bake,
            },
            "Hold": {"Type": "Wait", "Seconds": 60, "End": True},
        },
    })


def test_heartbeat_on_a_used_token_of_a_running_execution_is_task_does_not_exist(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    """While the execution still runs (here: a Wait after the bake), a
    heartbeat for a token already used answers TaskDoesNotExist (Step
    Functions API Reference, SendTaskHeartbeat, Errors), not an internal
    error (the patch raised moto's error without its message: a TypeError)."""
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, key="taskToken")
    machine = _bake_then_hold(aws, {"ResultPath": "$.bake"})
    sfn = no_retry_client(aws, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="hb-used", input="{}")["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    sfn.send_task_success(taskToken=tokens[0], output="{}")
    try:
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        with pytest.raises(ClientError) as e:
            sfn.send_task_heartbeat(taskToken=tokens[0])
        assert e.value.response["Error"]["Code"] == "TaskDoesNotExist", e.value.response
    finally:
        sfn.stop_execution(executionArn=arn)


def test_heartbeat_after_the_bake_timed_out_is_task_timed_out(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    """A bake ends by its timeout (the normal end of a bake): its token is
    then TaskTimedOut for SendTaskHeartbeat (Step Functions API Reference,
    SendTaskHeartbeat, Errors), so alarm-rollback sees that it no longer
    waits. moto kept answering as if the task still waited."""
    tokens: list[str] = []
    fake_lambda.handlers["check-health"] = recorder(tokens, key="taskToken")
    machine = _bake_then_hold(aws, {
        "TimeoutSeconds": 1,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Hold"}],
    })
    sfn = no_retry_client(aws, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="hb-timed-out", input="{}")["executionArn"]
    wait_for(lambda: tokens, what="bake invoke")
    sfn.send_task_heartbeat(taskToken=tokens[0])  # still waiting
    deadline = time.monotonic() + 15
    while not any(e.get("type") == "WaitStateEntered" for e in sfn.get_execution_history(executionArn=arn)["events"]):
        assert time.monotonic() < deadline, "the bake never timed out"
        time.sleep(0.2)
    try:
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        with pytest.raises(ClientError) as e:
            sfn.send_task_heartbeat(taskToken=tokens[0])
        assert e.value.response["Error"]["Code"] == "TaskTimedOut", e.value.response
    finally:
        sfn.stop_execution(executionArn=arn)
