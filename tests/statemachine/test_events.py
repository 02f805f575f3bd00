"""Deployment events (issue 16 item 2): the state machine's own
`events:putEvents` Tasks, run in moto's interpreter, put on the default bus
(moto's EventBridge; the local AWS's capture keeps them): the order of the
detail-types of each path, the detail, the schema, and that a failed send
never fails or changes a deployment."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import harness as h
from localaws.patches import eventbridge_capture
from harness import CREATE, FakeFunctions, FunctionError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "statemachine" / "events.schema.json").read_text())
ASL = json.loads((REPO / "statemachine" / "deployment.asl.json").read_text())
PUT_EVENTS = "arn:aws:states:::events:putEvents"
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

STARTED, STEP_STARTED, STEP_PASSED = "Deployment Started", "Deployment Step Started", "Deployment Step Passed"
ROLLED_BACK, SUCCEEDED, FAILED = "Deployment Rolled Back", "Deployment Succeeded", "Deployment Failed"


def event_states() -> dict[str, dict]:
    return {n: s for n, s in ASL["States"].items() if s["Type"] == "Task" and s["Resource"] == PUT_EVENTS}


def assert_valid(out) -> None:
    assert out.events, "no event captured"
    for e in out.events:
        VALIDATOR.validate({"source": e["source"], "detail-type": e["detail-type"], "detail": e["detail"]})
        assert e["eventBusName"] == "default"
        # The integration adds the execution ARN to Resources; the detail names it too.
        assert e["detail"]["execution"] in e["resources"]
        assert e["detail"]["deploymentId"] == out.name


def test_canary_success_sends_each_stage_in_order(sfn):
    out = sfn.run(h.request(steps=(10, 50, 100)), FakeFunctions())
    assert out.status == "SUCCEEDED", out.cause
    assert out.detail_types() == [STARTED] + [STEP_STARTED, STEP_PASSED] * 3 + [SUCCEEDED]
    assert_valid(out)
    started = out.events[0]["detail"]
    assert started == {
        "schemaVersion": "1",
        "deploymentId": out.name,
        "execution": started["execution"],
        "service": "api",
        "cluster": "demo",
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7",
        "newSlot": "green",
        "liveSlot": "blue",
        "alarms": [h.ALARM],
    }
    assert started["execution"].endswith(":" + out.name)
    # Step Started is sent once the step's weights are written.
    steps = [e["detail"] for e in out.events if e["detail-type"] == STEP_STARTED]
    assert [(d["step"]["number"], d["step"]["percent"], d["weights"]) for d in steps] == [
        (1, 10, {"blue": 90, "green": 10}),
        (2, 50, {"blue": 50, "green": 50}),
        (3, 100, {"blue": 0, "green": 100}),
    ]
    assert steps[1]["step"] == {"number": 2, "count": 3, "percent": 50, "label": "step 2 of 3 (50%)"}
    assert out.events[-1]["detail"]["weights"] == {"blue": 0, "green": 100}
    assert "error" not in out.events[-1]["detail"]


def test_alarm_rollback_sends_rolled_back_then_failed(sfn):
    out = sfn.run(h.request(), FakeFunctions(alarm_during_bake=2))
    assert out.status == "FAILED" and out.error == "RolledBackOnAlarm"
    assert out.detail_types() == [STARTED, STEP_STARTED, STEP_PASSED, STEP_STARTED, ROLLED_BACK, FAILED]
    assert_valid(out)
    rolled_back, failed = out.events[-2]["detail"], out.events[-1]["detail"]
    assert rolled_back["error"] == failed["error"] == "RolledBackOnAlarm"
    assert rolled_back["step"]["number"] == 2
    assert rolled_back["weights"] == {"blue": 100, "green": 0}
    assert failed["cause"] == out.cause


def test_first_deployment_and_not_ready(sfn):
    out = sfn.run(h.request(), FakeFunctions(first_deployment=True))
    assert out.status == "SUCCEEDED", out.cause
    assert out.detail_types() == [STARTED, SUCCEEDED]
    assert_valid(out)

    def never_ready(p):
        return p["check"] == "readiness"

    out = sfn.run(h.request(), FakeFunctions().fail(h.CHECK, FunctionError("NotReady"), when=never_ready))
    assert out.error == "NewTaskSetNotReady"
    assert out.detail_types() == [STARTED, FAILED]
    assert_valid(out)
    assert "step" not in out.events[-1]["detail"]


def test_refused_request_sends_failed_without_a_plan(sfn):
    out = sfn.run(h.request(), FakeFunctions().fail(CREATE, FunctionError("InvalidRequest", "steps must rise")))
    assert out.error == "CreateFailed"
    assert out.detail_types() == [FAILED]
    assert_valid(out)
    detail = out.events[0]["detail"]
    assert detail["error"] == "CreateFailed" and "steps must rise" in detail["cause"]
    assert "service" not in detail


def test_a_failed_send_is_retried_then_skipped_and_the_deployment_goes_on(sfn):
    ok = sfn.run(h.request(), FakeFunctions())
    # Every attempt of the first event fails (1 try + 3 retries): it is
    # skipped; every other event and every call is as without the failure.
    out = sfn.run(h.request(), FakeFunctions(), fail_put_events=4)
    assert out.status == "SUCCEEDED", out.cause
    assert out.detail_types() == ok.detail_types()[1:]
    assert out.call_summary() == ok.call_summary()
    failed = [e for e in out.history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["EventBridge.FailedEntry"] * 4
    assert len(out.record.retry_sleeps) == 3 and max(out.record.retry_sleeps) <= 3
    # One failure: the retry delivers it.
    once = sfn.run(h.request(), FakeFunctions(), fail_put_events=1)
    assert once.status == "SUCCEEDED"
    assert once.detail_types() == ok.detail_types()


def test_failed_sends_on_the_rollback_path_do_not_stop_the_rollback(sfn):
    """Sends fail from the Rolled Back event on: the rollback still drains
    and deletes the new task set, and the execution ends with its own error."""
    ok = sfn.run(h.request(), FakeFunctions(alarm_during_bake=1))
    assert ok.detail_types() == [STARTED, STEP_STARTED, ROLLED_BACK, FAILED]
    # Every send of the run fails (many more failures than it makes sends).
    broken = sfn.run(h.request(), FakeFunctions(alarm_during_bake=1), fail_put_events=100)
    assert broken.events == []
    assert broken.status == "FAILED" and broken.error == "RolledBackOnAlarm"
    assert broken.call_summary() == ok.call_summary()
    assert eventbridge_capture.status()["failNext"] == 0, "the harness resets the failures after a run"


# ------------------------------------------------------------------ static


def test_every_event_state_sends_one_event_of_the_schema_to_the_default_bus():
    types = set()
    for name, s in event_states().items():
        entries = s["Parameters"]["Entries"]
        assert len(entries) == 1, name
        entry = entries[0]
        assert entry["Source"] == "ecs-dns-canary", name
        assert entry["EventBusName"] == "default", name
        assert entry["DetailType"] in SCHEMA["properties"]["detail-type"]["enum"], name
        keys = {k.removesuffix(".$") for k in entry["Detail"]}
        assert keys <= set(SCHEMA["$defs"]["detail"]["properties"]), (name, keys)
        assert entry["Detail"]["schemaVersion"] == SCHEMA["$defs"]["detail"]["properties"]["schemaVersion"]["const"]
        types.add(entry["DetailType"])
    assert types == set(SCHEMA["properties"]["detail-type"]["enum"]), "a detail-type no state sends"


@pytest.mark.parametrize("name", sorted(event_states()))
def test_an_event_state_never_changes_the_path(name):
    """Retried a little, then caught to the same next state; its answer is
    dropped (ResultPath null), so the state data flows through unchanged."""
    s = ASL["States"][name]
    assert s["ResultPath"] is None
    assert 0 < s["TimeoutSeconds"] <= 10
    [retry] = s["Retry"]
    assert retry["ErrorEquals"] == ["States.TaskFailed"]
    assert retry["MaxAttempts"] <= 3 and retry["MaxDelaySeconds"] <= 5
    [catch] = s["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == s["Next"]
    assert catch["ResultPath"] not in ("$", None)


def test_a_canary_step_costs_the_history_events_the_engine_budgets(sfn):
    """One baked step, measured between two entries of More steps? in a run:
    what plan::CANARY_STEP_EVENTS (contract historyBudget) says, and the
    longest canary stays within the four fifths readiness leaves."""
    from canarytest import contract

    out = sfn.run(h.request(steps=(10, 50, 100)), FakeFunctions())
    entered = [
        i for i, e in enumerate(out.history)
        if e.get("stateEnteredEventDetails", {}).get("name") == "More steps?"
    ]
    per_step = entered[2] - entered[1]  # step 2: no first-shift bookkeeping
    budget = contract.load()["historyBudget"]
    assert budget["canaryStepEvents"] == per_step
    assert budget["maxSteps"] * per_step <= budget["executionHistoryLimit"] // 5


def test_every_end_state_is_announced():
    """Every Fail and Succeed state is entered only through an event state."""
    ends = {n for n, s in ASL["States"].items() if s["Type"] in ("Fail", "Succeed")}
    for name, s in ASL["States"].items():
        targets = [s.get("Next"), s.get("Default")] + [c["Next"] for c in s.get("Choices", []) + s.get("Catch", [])]
        for t in targets:
            if t in ends:
                assert name in event_states(), f"{name} goes to {t} without an event"


def test_an_approval_wait_is_announced_before_it_starts(sfn):
    """`strategy.approval`: Deployment Waiting For Approval, naming the step
    the execution waits before, comes before that step's Step Started."""
    req = h.request(steps=(10, 50, 100), approval={"beforeSteps": [50]})
    out = sfn.run(req, FakeFunctions(approvals={2: "approve"}))
    assert out.status == "SUCCEEDED", out.cause
    waiting = "Deployment Waiting For Approval"
    assert out.detail_types() == [STARTED, STEP_STARTED, STEP_PASSED, waiting] + [STEP_STARTED, STEP_PASSED] * 2 + [SUCCEEDED]
    assert_valid(out)
    (d,) = [e["detail"] for e in out.events if e["detail-type"] == waiting]
    assert d["step"] == {"number": 2, "count": 3, "percent": 50, "label": "step 2 of 3 (50%)"}
    assert "weights" not in d and "error" not in d
