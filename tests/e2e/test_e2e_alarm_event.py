"""Issue 7: rollback within a second of the alarm event, without polling."""

from __future__ import annotations

import time

import pytest

from canarytest import world as W
from canarytest.e2e import assert_invariants, service

LONG_BAKE = 600


def deliveries(aws, alarm: str, state: str) -> list[dict]:
    return [d for d in aws.alarm_events()["deliveries"] if d["alarmName"] == alarm and d["state"] == state]


def wait_completed(aws, alarm: str, state: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        done = [d for d in deliveries(aws, alarm, state) if d.get("completedAt")]
        if done:
            return done[-1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"event {alarm} -> {state} not delivered: {aws.alarm_events()}")
        time.sleep(0.02)


@pytest.mark.services(2)
def test_alarm_event_rolls_back_within_a_second_and_leaves_other_deployments_alone(aws, world):
    """Deployment A (10/50/100, 600 s bakes) and deployment B of another
    service (10/100, 8 s bakes, watching only its own alarms) both bake their
    first step. A's alarm goes to ALARM; the harness delivers the real-shaped
    `CloudWatch Alarm State Change` event to `alarm-rollback`.

    Measured from the harness's delivery record of that event (`emittedAt`,
    taken when the alarm state changed and the event was built, before the
    invoke) to the time the Route 53 change log records the function's
    ChangeResourceRecordSets that put A's weights back on blue: under 1 s.

    cargo-lambda starts a function with a cold `cargo run` on its first
    invocation (about a second, or a build): the harness and the session
    fixture already invoked every function once, and this test warms
    `alarm-rollback` once more through the same delivery path with OK-state
    events (INSUFFICIENT_DATA -> OK of a warm-up alarm; the function ignores
    them) so the measured event hits a warm instance, as in AWS after the
    first event.
    """
    a, b = service(world, 0), service(world, 1)
    old_a = W.primary(world, a)
    alarm = a.alarms[0]
    assert alarm not in b.alarms
    # No drain (unsafeShortDrain): this test is about the alarm path, and B
    # must still bake while A rolls back, whatever the machine's load.
    arn_a = W.start(world, a.request(f"{W.IMAGE_REPO}:v2", steps=(10, 50, 100), bake=LONG_BAKE,
                                     unsafeShortDrain=True), f"{a.name}-v2")
    arn_b = W.start(world, b.request(f"{W.IMAGE_REPO}:v2", steps=(10, 100), bake=25, unsafeShortDrain=True),
                    f"{b.name}-v2")
    W.wait_baking(world, arn_a, 1)
    W.wait_baking(world, arn_b, 1)

    # Warm alarm-rollback through the delivery path with non-ALARM events.
    cw = world.c("cloudwatch")
    cw.put_metric_alarm(AlarmName="warm-up", MetricName="m", Namespace="Warm", Statistic="Sum", Period=10,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
    aws.set_alarm_state("warm-up", "INSUFFICIENT_DATA", "warm-up")
    aws.set_alarm_state("warm-up", "OK", "warm-up")
    warm = wait_completed(aws, "warm-up", "OK")
    assert warm["result"] == "ok" and warm["response"]["executions"] == [], warm

    weights_b = W.weights(world, b)
    assert W.weights(world, a) == {"blue": 90, "green": 10} and weights_b == {"blue": 90, "green": 10}
    mark = aws.route53_changes()[-1]["seq"]
    call_mark = aws.calls()[-1]["seq"]
    t_alarm = time.time()

    aws.set_alarm_state(alarm, "ALARM", "5xx above threshold")

    delivery = wait_completed(aws, alarm, "ALARM")
    assert delivery["result"] == "ok", delivery
    actions = {x["executionArn"]: x for x in delivery["response"]["executions"]}
    assert actions[arn_a]["action"] == "rolledBack" and actions[arn_a]["bakeEnded"] is True, actions
    # Issue 17: the bakes are found by the alarm's name in the bake registry
    # (one DynamoDB Query): B, which does not watch the alarm, is not even
    # looked at, and no execution is listed nor its history read.
    assert delivery["response"]["lookup"] == "registry", delivery["response"]
    assert arn_b not in actions, actions
    during = [(c["service"], c["operation"]) for c in aws.calls(caller="function", since=call_mark)
              if c["time"] <= delivery["completedAt"]]
    assert during.count(("dynamodb", "Query")) == 1, during
    assert not [c for c in during if c[1] in ("ListExecutions", "GetExecutionHistory")], during
    # The function's weight change, from the Route 53 change log.
    rollback = [c for c in aws.route53_changes(since=mark) if c["caller"] == "function"]
    assert [W.weight_changes([c], a) for c in rollback][:1] == [[{"blue": 100, "green": 0}]], rollback
    reaction = rollback[0]["time"] - delivery["emittedAt"]
    print(f"\nalarm event emitted -> weights back on blue: {reaction * 1000:.0f} ms "
          f"(delivery {delivery['deliveryLatencyMs']} ms, handler {delivery['handlerMs']} ms, "
          f"set_alarm_state -> weights {1000 * (rollback[0]['time'] - t_alarm):.0f} ms)")
    assert 0 <= reaction < 1.0, reaction
    assert W.weights(world, a) == {"blue": 100, "green": 0}

    # B goes on untouched: still RUNNING in the bake of its first step, same
    # weights, no record change on its name.
    assert W.describe(world, arn_b)["status"] == "RUNNING"
    bakes_b = W.bakes(W.history(world, arn_b))
    assert len(bakes_b) == 1 and bakes_b[0]["end"] is None, bakes_b
    assert W.weights(world, b) == weights_b
    assert W.weight_changes(aws.route53_changes(since=mark), b, caller=None) == []

    # A leaves its 600 s bake at once and ends in its rollback Fail state.
    d = W.wait_end(world, arn_a, timeout=60)
    ended_after = d["stopDate"].timestamp() - t_alarm
    print(f"A ended {d['status']} {d.get('error')} {ended_after:.1f} s after the alarm (bake {LONG_BAKE} s)")
    assert d["status"] == "FAILED" and d["error"] == "RolledBackOnAlarm", d.get("cause")
    assert alarm in d["cause"] and "step 1 of 3" in d["cause"], d["cause"]
    assert ended_after < 30, ended_after
    events = W.history(world, arn_a)
    assert W.story(events) == W.canary_story(1, "alarm")
    bake_a = W.bakes(events)
    assert [(x["end"], x["error"]) for x in bake_a] == [("TaskFailed", "AlarmFiring")]
    sets = W.task_sets(world, a)
    assert [(t["id"], t["status"], W.slot_of(a, t)) for t in sets] == [(old_a["id"], "PRIMARY", "blue")]
    assert W.instances(world, a, "green") == []

    # B is still untouched after A's whole rollback, then finishes on its own.
    assert W.weights(world, b) == weights_b
    d_b = W.wait_end(world, arn_b, timeout=120)
    assert d_b["status"] == "SUCCEEDED", (d_b.get("error"), d_b.get("cause"))
    assert [x["end"] for x in W.bakes(W.history(world, arn_b))] == ["TaskTimedOut", "TaskTimedOut"]
    changes = assert_invariants(aws)
    # The two steps, then the promotion's identical write that confirms INSYNC (issue 12 item 5).
    assert W.weight_changes(changes, b) == [{"blue": 90, "green": 10}, {"blue": 0, "green": 100}, {"blue": 0, "green": 100}]
