"""Deployments that roll back or never move traffic: an alarm during step k,
the end-of-bake safety net for a lost alarm event, and a new task set that
never becomes healthy."""

from __future__ import annotations

import time

import pytest

from canarytest import world as W
from canarytest.e2e import assert_invariants, function_calls, run, service

STEPS = (10, 50, 100)
STEP_WEIGHTS = [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
BACK = {"blue": 100, "green": 0}


def assert_rolled_back(w: W.World, svc: W.Service, old: dict) -> None:
    """Traffic all on blue, the old task set the only one and PRIMARY, no
    instance left in green."""
    assert W.weights(w, svc) == BACK
    sets = W.task_sets(w, svc)
    assert [(t["id"], t["status"], W.slot_of(svc, t)) for t in sets] == [(old["id"], "PRIMARY", "blue")]
    assert W.instances(w, svc, "green") == []
    assert len(W.instances(w, svc, "blue")) == 2


def wait_delivery(aws, alarm: str, state: str, timeout: float = 30.0) -> dict:
    """The harness's delivery record of the event for ``alarm`` going to
    ``state``, once it has completed (or been dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        for d in aws.alarm_events()["deliveries"]:
            if d["alarmName"] == alarm and d["state"] == state and (d.get("completedAt") or d.get("result") == "dropped"):
                return d
        if time.monotonic() > deadline:
            raise TimeoutError(f"no completed delivery of {alarm} -> {state}: {aws.alarm_events()}")
        time.sleep(0.05)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_alarm_during_step_k_rolls_back(aws, world, k):
    svc = service(world)
    old = W.primary(world, svc)
    alarm = svc.alarms[0]
    name = f"{svc.name}-v2"
    arn = W.start(world, svc.request(f"{W.IMAGE_REPO}:v2", steps=STEPS, bake=2), name)

    W.wait_baking(world, arn, k)
    aws.set_alarm_state(alarm, "ALARM", f"errors during step {k}")
    d = W.wait_end(world, arn, timeout=60)
    events = W.history(world, arn)

    assert d["status"] == "FAILED"
    assert d["error"] == "RolledBackOnAlarm", d.get("cause")
    assert alarm in d["cause"] and f"step {k} of 3" in d["cause"], d["cause"]
    # The alarm event ended the bake of step k (not its timeout, not the gate).
    assert W.story(events) == W.canary_story(k, "alarm")
    b = W.bakes(events)
    assert [x["end"] for x in b] == ["TaskTimedOut"] * (k - 1) + ["TaskFailed"]
    assert b[-1]["error"] == "AlarmFiring"
    delivery = wait_delivery(aws, alarm, "ALARM")
    assert delivery["result"] == "ok", delivery
    assert [(x["executionArn"], x["action"]) for x in delivery["response"]["executions"]] == [(arn, "rolledBack")]

    changes = assert_invariants(aws, svc)
    moved = W.weight_changes(changes, svc)
    assert moved[:k] == STEP_WEIGHTS[:k]
    assert moved[k:] and all(m == BACK for m in moved[k:]), moved
    assert_rolled_back(world, svc, old)


def test_lost_alarm_event_is_caught_by_the_end_of_bake_gate(aws, world):
    """With alarm event delivery switched off, an alarm that goes to ALARM
    and back to OK during a bake leaves only its history: the gate at the end
    of the bake reads it and rolls back."""
    svc = service(world)
    old = W.primary(world, svc)
    alarm = svc.alarms[1]
    aws.alarm_events(enabled=False)
    arn = W.start(world, svc.request(f"{W.IMAGE_REPO}:v2", steps=(50, 100), bake=2), f"{svc.name}-v2")

    W.wait_baking(world, arn, 1)
    aws.set_alarm_state(alarm, "ALARM", "latency spike")
    aws.set_alarm_state(alarm, "OK", "latency back to normal")
    d = W.wait_end(world, arn, timeout=60)
    events = W.history(world, arn)

    assert d["status"] == "FAILED"
    assert d["error"] == "RolledBackOnAlarm", d.get("cause")
    assert alarm in d["cause"] and "step 1 of 2" in d["cause"], d["cause"]
    # The bake ran its full time (no event ended it); the gate failed.
    assert W.story(events) == W.canary_story(1, "gate")
    assert [x["end"] for x in W.bakes(events)] == ["TaskTimedOut"]
    gate_failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [g["error"] for g in gate_failures] == ["AlarmFiring"]
    deliveries = [x for x in aws.alarm_events()["deliveries"] if x["alarmName"] == alarm]
    assert [(x["state"], x["result"]) for x in deliveries] == [("ALARM", "dropped"), ("OK", "dropped")]

    changes = assert_invariants(aws, svc)
    assert W.weight_changes(changes, svc) == [{"blue": 50, "green": 50}, BACK]
    assert_rolled_back(world, svc, old)


def test_new_task_set_never_healthy_is_cleaned_up_without_touching_traffic(aws, world):
    svc = service(world)
    old = W.primary(world, svc)
    before = W.weights(world, svc)
    aws.set_unhealthy(next=True)

    d, events = run(world, svc.request(f"{W.IMAGE_REPO}:v2", ready_timeout=3, ready_poll=1), f"{svc.name}-v2")

    assert d["status"] == "FAILED"
    assert d["error"] == "NewTaskSetNotReady", d.get("cause")
    assert "NotReady" in d["cause"] and "green" in d["cause"], d["cause"]
    assert W.story(events) == [
        "Create task set in idle slot",
        "Check new task set readiness",
        "New task set not ready",
        "Delete new task set",
        "Deployment failed",
    ]
    # Polled more than once, then gave up.
    assert W.entered(events).count("Check new task set readiness") >= 2
    # Traffic untouched: no function changed a record but the service's
    # deployment lock (create-taskset's one write to Route 53, a TXT record
    # beside the weighted CNAMEs).
    lock = f"_ecs-dns-canary-lock.{svc.record_name}"
    assert len(function_calls(aws, "ChangeResourceRecordSets")) == 1
    by_functions = [c for c in aws.route53_changes() if c["caller"] != "harness"]
    assert [sorted({x["name"].rstrip(".") for x in c["changes"]}) for c in by_functions] == [[lock]], by_functions
    assert W.weights(world, svc) == before == BACK
    sets = W.task_sets(world, svc)
    assert [(t["id"], t["status"], W.slot_of(svc, t)) for t in sets] == [(old["id"], "PRIMARY", "blue")]
    assert W.instances(world, svc, "green") == []
    assert len(function_calls(aws, "DeleteTaskSet", "ecs")) == 1


def test_failed_first_deployment_deletes_its_task_set_and_leaves_the_weights(aws, world):
    """Issue 12 item 2. A service without a task set (its template created
    the records blue 100 / green 0): the first task set goes to blue, the
    slot that already has all the weight, and never becomes healthy. The
    execution ends NewTaskSetNotReady with the task set deleted (not
    UnsafeDelete / CleanupFailed) and no record written."""
    svc = service(world)
    ecs = world.c("ecs")
    initial = W.primary(world, svc)
    ecs.delete_task_set(cluster=svc.cluster, service=svc.name, taskSet=initial["taskSetArn"], force=True)
    assert W.task_sets(world, svc) == []
    before = W.weights(world, svc)
    assert before == BACK
    aws.set_unhealthy(next=True)
    req = svc.request(f"{W.IMAGE_REPO}:v2", ready_timeout=3, ready_poll=1)
    # No task set to copy from: the first deployment names its task definition.
    del req["image"]
    req["taskDefinition"] = initial["taskDefinition"]
    req["target"]["network"] = {"subnets": [world.subnet_id], "securityGroups": [world.sg_id], "launchType": "FARGATE"}
    name = f"{svc.name}-first"

    d, events = run(world, req, name)

    assert d["status"] == "FAILED"
    assert d["error"] == "NewTaskSetNotReady", d.get("cause")
    assert "blue" in d["cause"] and "was deleted" in d["cause"], d["cause"]
    assert W.story(events) == [
        "Create task set in idle slot",
        "Check new task set readiness",
        "New task set not ready",
        "Delete new task set",
        "Deployment failed",
    ]
    # The task set it created is gone, the service is as before: no task set.
    assert W.task_sets(world, svc) == []
    assert len(function_calls(aws, "DeleteTaskSet", "ecs")) == 1
    # Weights untouched: no function changed a weighted record (the one
    # Route 53 write is the deployment lock, a TXT record).
    weighted = [c for c in aws.route53_changes() if c["caller"] == "function"
                and any(x.get("setIdentifier") for x in c["changes"])]
    assert weighted == [], weighted
    assert W.weights(world, svc) == before
