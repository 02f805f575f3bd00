"""Static checks of statemachine/deployment.asl.json: substitutions, Tasks,
retry/catch policy, Fail error names, and the payloads and result selectors
against the engine's contract (contract/contract.json, generated from
shared/src/model.rs and shared/src/error.rs)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarytest import contract

REPO = Path(__file__).resolve().parents[2]
ASL_PATH = REPO / "statemachine" / "deployment.asl.json"
LOCAL_SUBS = REPO / "statemachine" / "local-substitutions.json"
TEMPLATE = REPO / "infra" / "template.yaml"

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"
PUT_EVENTS = "arn:aws:states:::events:putEvents"
RETRIED = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Retryable",
}
FUNCTIONS = {
    "CreateTaskSetFunction": "create-taskset",
    "SetWeightFunction": "set-weight",
    "CheckHealthFunction": "check-health",
    "DeleteTaskSetFunction": "delete-taskset",
}


@pytest.fixture(scope="module")
def asl() -> dict:
    return json.loads(ASL_PATH.read_text())


def states(asl: dict, typ: str | None = None) -> dict[str, dict]:
    return {n: s for n, s in asl["States"].items() if typ is None or s["Type"] == typ}


def lambda_tasks(asl: dict) -> dict[str, dict]:
    """The Tasks that invoke a function (the others send deployment events)."""
    return {n: s for n, s in states(asl, "Task").items() if s["Resource"] != PUT_EVENTS}


def event_tasks(asl: dict) -> dict[str, dict]:
    return {n: s for n, s in states(asl, "Task").items() if s["Resource"] == PUT_EVENTS}


def placeholders() -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))


class _CfnLoader(yaml.SafeLoader):
    """Reads a CloudFormation template: intrinsic tags become plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _any_tag)


# ------------------------------------------------------------------ substitutions


def test_placeholders_are_the_four_functions():
    assert placeholders() == set(FUNCTIONS)


def test_every_placeholder_has_a_local_substitution():
    subs = json.loads(LOCAL_SUBS.read_text())
    missing = placeholders() - set(subs)
    assert not missing, f"statemachine/local-substitutions.json lacks {sorted(missing)}"
    assert subs == FUNCTIONS, "local substitutions must be the plain function names"


def test_every_placeholder_has_a_template_substitution():
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    machines = {
        name: res
        for name, res in template.get("Resources", {}).items()
        if res.get("Type") in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    }
    ours = {
        name: res
        for name, res in machines.items()
        if str(res.get("Properties", {}).get("DefinitionUri", "")).endswith("statemachine/deployment.asl.json")
    }
    assert ours, f"no state machine in infra/template.yaml has DefinitionUri .../statemachine/deployment.asl.json (found {sorted(machines)})"
    for name, res in ours.items():
        subs = res["Properties"].get("DefinitionSubstitutions") or {}
        missing = placeholders() - set(subs)
        assert not missing, f"{name}.DefinitionSubstitutions lacks {sorted(missing)}"


# ------------------------------------------------------------------ tasks


def test_json_path_only(asl):
    assert asl.get("QueryLanguage", "JSONPath") == "JSONPath"
    assert "{%" not in ASL_PATH.read_text(), "JSONata expressions do not run locally"
    for name, s in asl["States"].items():
        assert s.get("QueryLanguage", "JSONPath") == "JSONPath", name


def test_every_task_is_a_lambda_invoke_with_a_function_name(asl):
    tasks = lambda_tasks(asl)
    assert tasks
    for name, s in tasks.items():
        assert s["Resource"] in (LAMBDA_INVOKE, LAMBDA_INVOKE_TOKEN), name
        fn = s.get("Parameters", {}).get("FunctionName")
        assert fn, f"{name}: lambda:invoke without FunctionName"
        assert re.fullmatch(r"\$\{\w+Function\}", fn), f"{name}: FunctionName {fn!r} is not a placeholder"
        assert "Payload" in s["Parameters"], name


def test_only_the_bake_and_the_approval_wait_for_a_token(asl):
    token_tasks = {n for n, s in states(asl, "Task").items() if s["Resource"] == LAMBDA_INVOKE_TOKEN}
    assert token_tasks == {"Bake", "Wait for approval"}
    wait = asl["States"]["Wait for approval"]
    assert wait["TimeoutSecondsPath"] == "$.deployment.strategy.approval.timeoutSeconds"
    # Registered like a bake (alarm-rollback finds it by alarm name) until the timeout.
    payload = wait["Parameters"]["Payload"]
    assert payload["taskToken.$"] == "$$.Task.Token"
    assert payload["bakeSeconds.$"] == "$.deployment.strategy.approval.timeoutSeconds"
    assert set(payload) == set(asl["States"]["Bake"]["Parameters"]["Payload"])
    catches = {e: c["Next"] for c in wait["Catch"] for e in c["ErrorEquals"]}
    assert catches["AlarmFiring"] == "Alarm fired"
    assert catches["Aborted"] == "Aborted by engineer"
    assert catches["Rejected"] == "Rejected by engineer"
    assert catches["States.Timeout"] == "Approval timed out"
    bake = asl["States"]["Bake"]
    assert bake["TimeoutSecondsPath"] == "$.deployment.strategy.bakeSeconds"
    assert bake["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    bake_catches = [c["ErrorEquals"] for c in bake["Catch"]]
    assert bake_catches[0] == ["States.Timeout"] and bake["Catch"][0]["Next"] == "Check alarms"


def test_every_task_retries_transient_errors_with_jitter(asl):
    for name, s in lambda_tasks(asl).items():
        retriers = s.get("Retry", [])
        covered = {e for r in retriers for e in r["ErrorEquals"]}
        assert RETRIED <= covered, f"{name}: no retry for {sorted(RETRIED - covered)}"
        for r in retriers:
            assert r.get("JitterStrategy") == "FULL", name
            assert r.get("MaxDelaySeconds", 0) > 0, name
            assert r.get("BackoffRate", 1.0) > 1.0, name
            assert r.get("MaxAttempts", 3) >= 3, name
            assert "States.ALL" not in r["ErrorEquals"], name


def test_every_task_catches_everything_else_last(asl):
    for name, s in states(asl, "Task").items():
        catches = s.get("Catch", [])
        assert catches, f"{name}: no Catch"
        assert catches[-1]["ErrorEquals"] == ["States.ALL"], f"{name}: States.ALL must be alone and last"
        for c in catches[:-1]:
            assert "States.ALL" not in c["ErrorEquals"], name
        if name == asl["StartAt"]:
            # No plan exists yet, and the input may not even be an object (a
            # non-object has no $.failure to write into): the Catch replaces
            # the state with the error.
            continue
        for c in catches:
            assert c.get("ResultPath", "$") != "$", f"{name}: a Catch must not replace the state (the plan is needed)"


def test_error_names_matched_are_real(asl):
    known = set(contract.error_types())
    for name, s in lambda_tasks(asl).items():
        for rule in s.get("Retry", []) + s.get("Catch", []):
            for err in rule["ErrorEquals"]:
                if err.startswith(("States.", "Lambda.")):
                    continue
                assert err in known, f"{name} matches {err!r}, which no function raises (error.rs)"


# ------------------------------------------------------------------ fail states


def fail_errors(asl) -> set[str]:
    names = set()
    for s in states(asl, "Fail").values():
        if "Error" in s:
            names.add(s["Error"])
        else:
            assert s["ErrorPath"] == "$.outcome.error"
    # ErrorPath reads the error a Pass state chose ($.outcome.error).
    for s in states(asl, "Pass").values():
        if s.get("ResultPath") == "$.outcome":
            names.add(s["Parameters"]["error"])
    return names


def test_fail_error_names_are_the_documented_set(asl):
    names = fail_errors(asl)
    assert names == contract.FAIL_ERRORS
    for n in names:
        assert not n.startswith("States."), n
        assert n not in contract.error_types(), f"{n} would be confused with a function error"


def test_every_fail_says_why(asl):
    for name, s in states(asl, "Fail").items():
        assert "Cause" in s or "CausePath" in s, f"{name}: no Cause"


def test_readme_lists_every_fail_error():
    readme = REPO / "statemachine" / "README.md"
    text = readme.read_text()
    for n in contract.FAIL_ERRORS:
        assert f"`{n}`" in text, f"statemachine/README.md does not document {n}"


# ------------------------------------------------------------------ contract


def task_kind(state: dict) -> str:
    fn = state["Parameters"]["FunctionName"][2:-1]
    payload = state["Parameters"]["Payload"]
    if fn == "CheckHealthFunction":
        if payload.get("check") == "readiness":
            return "readiness"
        return "bake" if "taskToken.$" in payload else "gate"
    return FUNCTIONS[fn]


def _input(function: str) -> str:
    """The request type the function parses (contract/contract.json)."""
    return contract.functions()[function]["input"]


REQUEST_TYPES: dict[str, Callable[[], dict[str, Any]]] = {
    "create-taskset": lambda: contract.struct(_input("create-taskset")),
    "set-weight": lambda: contract.struct(_input("set-weight")),
    "delete-taskset": lambda: contract.struct(_input("delete-taskset")),
    "readiness": lambda: {"check": None, **contract.enum_variant(_input("check-health"), "Readiness")},
    "gate": lambda: {"check": None, **contract.enum_variant(_input("check-health"), "Alarms")},
    "bake": lambda: {"check": None, **contract.enum_variant(_input("check-health"), "Alarms")},
}
# check-health answers a CheckReport: one of these two, by the check asked.
ANSWER_TYPES = {
    "set-weight": contract.functions()["set-weight"]["output"],
    "delete-taskset": contract.functions()["delete-taskset"]["output"],
    "readiness": "ReadinessReport",
    "gate": "GateReport",
}


# Answer fields that are #[serde(default)] (or Option) only so older
# histories can be read, but that the function always writes.
ALWAYS_WRITTEN = {
    # requestedAt: always stamped; drain: written (null unless the request
    # asked for it, and the promotion and rollback always do).
    # rollbackBound: written (null unless the request carried one).
    "set-weight": ("requestedAt", "drain", "rollbackBound"),
    # observedAt: always stamped by the gate (empty only in older histories).
    "gate": ("observedAt",),
}


def json_keys(obj: dict) -> set[str]:
    return {k[:-2] if k.endswith(".$") else k for k in obj}


def test_payloads_match_the_request_types(asl):
    for name, s in lambda_tasks(asl).items():
        kind = task_kind(s)
        fields = REQUEST_TYPES[kind]()
        payload = s["Parameters"]["Payload"]
        keys = json_keys(payload)
        unknown = keys - set(fields)
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of the {kind} request (model.rs)"
        required = {f for f, d in fields.items() if d is not None and not d.optional}
        missing = required - keys
        assert not missing, f"{name}: the {kind} request needs {sorted(missing)}"
        if kind == "bake":
            plan = contract.struct("RollbackPlan")
            assert json_keys(payload["rollback"]) <= set(plan)


def test_result_selectors_pick_fields_that_are_always_there(asl):
    """A ResultSelector path to a field that is absent fails the state
    (States.Runtime), so only non-optional answer fields may be picked."""
    for name, s in lambda_tasks(asl).items():
        selector = s.get("ResultSelector")
        if not selector:
            continue
        kind = task_kind(s)
        for key, path in selector.items():
            assert key.endswith(".$"), f"{name}: static ResultSelector field {key}"
            parts = path.split(".")
            assert parts[:2] == ["$", "Payload"], f"{name}: {path}"
            if kind == "create-taskset":
                assert path == "$.Payload" and s["ResultPath"] == "$" and key == "deployment.$"
                continue
            fields = contract.struct(ANSWER_TYPES[kind])
            field = parts[2]
            assert field in fields, f"{name}: {path}: no field {field} in {ANSWER_TYPES[kind]}"
            # The function's serialized answer has every field serde does
            # not skip (an Option without skip_serializing_if is written as
            # null); #[serde(default)] only lets older histories be read.
            f = fields[field]
            assert not f.skipped_when_none, f"{name}: {path} may be absent"
            assert not f.optional or field in ALWAYS_WRITTEN.get(kind, ()), f"{name}: {path} may be absent"
            if len(parts) > 3:
                type_name = fields[field].type_name
                assert type_name is not None, f"{name}: {path} goes into a field that holds no model type"
                sub = contract.struct(type_name)
                assert parts[3] in sub and not sub[parts[3]].optional, f"{name}: {path}"


def test_deployment_paths_exist_in_the_plan(asl):
    """Every $.deployment.* path the definition reads is a field of Deployment."""
    text = ASL_PATH.read_text()
    nested = {
        "target": contract.struct("Target"),
        "strategy": contract.struct("Strategy"),
        "alarms": contract.struct("AlarmGate"),
        "newTaskSet": contract.struct("TaskSetRef"),
        "oldTaskSet": contract.struct("TaskSetRef"),
    }
    deployment = contract.struct("Deployment")
    paths = set(re.findall(r"\$\.deployment((?:\.\w+)+)", text))
    assert paths
    for path in paths:
        parts = path.strip(".").split(".")
        assert parts[0] in deployment, f"$.deployment{path}: no field {parts[0]} in Deployment"
        if len(parts) > 1:
            assert parts[1] in nested[parts[0]], f"$.deployment{path}: no field {parts[1]}"


# ------------------------------------------- execution history budget (issue 12)

# History events each state adds when it runs once without error (Step
# Functions GetExecutionHistory: <Type>StateEntered / <Type>StateExited, and
# for a Lambda Task TaskScheduled, TaskStarted, TaskSucceeded in between).
EVENTS_PER_STATE = {"Task": 5, "Choice": 2, "Wait": 2, "Pass": 2}
READINESS_CHECK = "Check new task set readiness"


def _next_states(state: dict) -> list[str]:
    out = [state["Next"]] if "Next" in state else []
    out += [c["Next"] for c in state.get("Choices", [])]
    if "Default" in state:
        out.append(state["Default"])
    return out


def _readiness_loop(asl: dict) -> list[str]:
    """The shortest path from the readiness check back to itself: one poll."""
    all_states = asl["States"]
    frontier = [[READINESS_CHECK]]
    seen = {READINESS_CHECK}
    while frontier:
        path = frontier.pop(0)
        for nxt in _next_states(all_states[path[-1]]):
            if nxt == READINESS_CHECK:
                return path
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(path + [nxt])
    raise AssertionError("no loop back to the readiness check")


def test_one_readiness_poll_costs_the_events_the_engine_budgets(asl):
    """create-taskset bounds readyTimeoutSeconds / readyPollSeconds so that
    polls x events per poll stays far below the 25,000-event history limit;
    the events per poll it assumes must be what the ASL really costs."""
    loop = _readiness_loop(asl)
    assert len(loop) >= 2, loop  # the check, a Choice, and (at least) a Wait
    types = [asl["States"][s]["Type"] for s in loop]
    assert "Wait" in types, f"the readiness loop {loop} must wait between polls"
    events = sum(EVENTS_PER_STATE[t] for t in types)
    budget = contract.load()["historyBudget"]
    assert budget["readinessEventsPerPoll"] == events, (loop, types)
    # The budget itself: at most a fifth of the history for readiness.
    assert budget["executionHistoryLimit"] == 25_000
    max_polls = 25_000 // 5 // events
    assert max_polls * events <= 5_000
    assert budget["maxReadyPolls"] == max_polls


# ------------------------------------------------------------------ abort and repair


def test_state_names_the_engine_decides_on_exist(asl):
    """`plan::states` (shared/src/plan.rs, as `stateGroups` of
    contract/contract.json) names the states the CLI's abort
    and the repair function read in a history: each must exist, and every
    state of the definition must be in one of its groups (a new state
    needs a decision there)."""
    names = {name for group in contract.state_groups().values() for name in group}
    defined = set(asl["States"])
    assert names - defined == set(), "plan::states names states the definition lacks"
    assert defined - names == set(), "states plan::states does not classify (abort/repair must decide on them)"
