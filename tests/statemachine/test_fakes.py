"""The canned answers of harness.FakeFunctions have the shape of the Rust
answer types in shared/src/model.rs, so the branching tests feed the
definition what the real functions return."""

import pytest

from canarytest import contract
import harness as h


def assert_shape(obj: dict, type_name: str, nested: dict[str, str] | None = None):
    fields = contract.struct(type_name)
    unknown = set(obj) - set(fields)
    assert not unknown, f"{type_name}: fake answer has {sorted(unknown)}"
    required = {n for n, f in fields.items() if not f.optional}
    missing = required - set(obj)
    assert not missing, f"{type_name}: fake answer lacks {sorted(missing)}"
    for name, sub in (nested or {}).items():
        value = obj.get(name)
        if value is not None:
            assert_shape(value, sub)


@pytest.mark.parametrize("first", [False, True])
def test_create_answer_is_a_deployment(first):
    fake = h.FakeFunctions(first_deployment=first)
    answer = fake.invoke(h.CREATE, {"deploymentId": "d-1", "request": h.request()})
    assert_shape(
        answer,
        "Deployment",
        {"target": "Target", "strategy": "Strategy", "alarms": "AlarmGate", "newTaskSet": "TaskSetRef", "oldTaskSet": "TaskSetRef"},
    )
    assert_shape(answer["target"]["slots"], "Slots")
    assert_shape(answer["target"]["slots"]["blue"], "SlotConfig")
    assert (answer["oldTaskSet"] is None) == first


def test_request_fixture_is_a_deployment_request():
    assert_shape(h.request(), "DeploymentRequest", {"target": "Target", "strategy": "StrategyInput", "alarms": "AlarmGate"})


def test_set_weight_answer_is_a_weight_report():
    fake = h.FakeFunctions()
    answer = fake.invoke(h.SET_WEIGHT, {"target": h.TARGET, "slot": "green", "percent": 10, "label": "step 1 of 3 (10%)"})
    assert_shape(answer, "WeightReport", {"weights": "Weights"})


def test_readiness_answer_is_a_readiness_report():
    fake = h.FakeFunctions()
    answer = fake.invoke(
        h.CHECK,
        {"check": "readiness", "target": h.TARGET, "slot": "green", "taskSet": h.NEW_TASK_SET, "waitingSince": "x", "timeoutSeconds": 1},
    )
    assert_shape(answer, "ReadinessReport")


def test_gate_answer_is_a_gate_report():
    fake = h.FakeFunctions()
    answer = fake.invoke(h.CHECK, {"check": "alarms", "alarms": {"names": []}, "since": "x", "label": "step 1 of 1 (100%)"})
    assert_shape(answer, "GateReport")
    for alarm in answer["alarms"]:
        assert_shape(alarm, "AlarmReport")


def test_delete_answer_is_a_delete_report():
    fake = h.FakeFunctions()
    answer = fake.invoke(h.DELETE, {"target": h.TARGET, "slot": "blue", "taskSet": h.OLD_TASK_SET})
    assert_shape(answer, "DeleteReport")
