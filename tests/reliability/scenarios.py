"""The deployments the fault matrix is built on, and how one is run.

- `canary`: steps 50 % then 100 %, 1 s bakes, no drain (`drainSeconds: 0`
  with `unsafeShortDrain`, since issue 13's exact drain is otherwise kept); ends SUCCEEDED.
- `rollback`: the same, but the first gate alarm goes to ALARM as soon as
  the first bake waits for its token; the alarm-rollback function moves the
  weights back, fails the bake's token, the execution rolls back and ends
  `RolledBackOnAlarm`.
- `repair` (issue 15): the canary, stopped (StopExecution) as soon as its
  first bake waits for its token, with Step Functions status change events
  on: the `repair` function restores the old slot at 100 % and deletes the
  execution's task set, and records `restored` in `<sm>-repairs`. Its
  outcome is the repair's (the record's `action`), not the execution's
  (ABORTED).

`tests/reliability/calls.json` is the list of AWS calls the functions made in
one clean run of each (written by `gen_calls.py`); the fault matrix is derived
from it, so a fault point is always a call a deployment really makes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import rig

SCENARIOS: dict[str, dict[str, Any]] = {
    "canary": {
        "strategy": {"steps": [50, 100], "bake": 1, "ready_poll": 1, "drain": 0, "unsafeShortDrain": True, "ready_timeout": 60},
        "alarm_at_first_bake": False,
        "expect": "SUCCEEDED",
    },
    "rollback": {
        "strategy": {"steps": [50, 100], "bake": 5, "ready_poll": 1, "drain": 0, "unsafeShortDrain": True, "ready_timeout": 60},
        "alarm_at_first_bake": True,
        "expect": "RolledBackOnAlarm",
    },
    "repair": {
        "strategy": {"steps": [50, 100], "bake": 60, "ready_poll": 1, "drain": 0, "unsafeShortDrain": True, "ready_timeout": 60},
        "alarm_at_first_bake": False,
        "stop_at_first_bake": True,
        "expect": "restored",
    },
}


def request_for(svc: Any, scenario: str) -> dict[str, Any]:
    s = dict(SCENARIOS[scenario]["strategy"])
    steps = s.pop("steps")
    bake = s.pop("bake")
    return svc.request(rig.IMAGE, steps=steps, bake=bake, **s)


def outcome_of(desc: dict[str, Any]) -> str:
    return "SUCCEEDED" if desc["status"] == "SUCCEEDED" else str(desc.get("error") or desc["status"])


@dataclass
class Run:
    scenario: str
    execution_arn: str
    desc: dict[str, Any]
    seconds: float
    call_seq0: int
    change_seq0: int
    violations: list[str] = field(default_factory=list)
    observed: Any = None
    alarm_set: bool = False
    # The repair scenario: when the harness stopped the execution, the
    # repair's delivery (rig.wait_repair) and its record's report.
    stopped_at: float | None = None
    delivery: dict[str, Any] | None = None
    repair: dict[str, Any] | None = None

    @property
    def outcome(self) -> str:
        if self.stopped_at is not None:
            return repair_outcome(self.repair, self.delivery)
        return outcome_of(self.desc)

    @property
    def cause(self) -> str:
        if self.stopped_at is not None:
            return str((self.repair or (self.delivery or {}).get("response") or {}).get("reason") or self.delivery)
        return str(self.desc.get("cause") or "")


def repair_outcome(record: dict[str, Any] | None, delivery: dict[str, Any] | None) -> str:
    """The record's action (restored, failed, ...); without a record, what
    the function answered (`unrecorded <action>` or its error type)."""
    if record is not None:
        return str(record.get("action"))
    if delivery is None:
        return "not delivered"
    resp = delivery.get("response") or {}
    if delivery.get("result") == "ok" and isinstance(resp, dict):
        return f"unrecorded {resp.get('action')}"
    return f"delivery {delivery.get('result')} {delivery.get('errorType') or ''}".strip()


def run(
    lane: rig.Lane, w: Any, svc: Any, scenario: str, tag: str, before_start: Any = None, timeout: float = 600, before_stop: Any = None
) -> Run:
    """Runs one deployment of `svc` in `scenario`. `before_start()` is called
    just before StartExecution (to add fault rules, so their call counting
    starts with this deployment); `before_stop()` just before the repair
    scenario's StopExecution (so the counting starts with the repair)."""
    if SCENARIOS[scenario].get("stop_at_first_bake"):
        return _run_stopped(lane, w, svc, scenario, tag, before_start, before_stop, timeout)
    call_seq0, change_seq0, t0, arn = _start(lane, svc, scenario, tag, before_start)
    alarm_set = False
    if SCENARIOS[scenario]["alarm_at_first_bake"] and rig.wait_for_bake(lane, arn, timeout=timeout):
        lane.aws.set_alarm_state(svc.alarms[0], "ALARM", f"{tag}: errors above threshold")
        alarm_set = True
    desc = rig.wait(lane, arn, timeout=timeout)
    seconds = time.time() - t0
    r = Run(scenario, arn, desc, seconds, call_seq0, change_seq0, alarm_set=alarm_set)
    r.violations, r.observed = rig.check_invariants(lane, w, svc, desc, since_change=change_seq0)
    if alarm_set:
        _wait_alarm_deliveries(lane)
    return r


def _start(lane: rig.Lane, svc: Any, scenario: str, tag: str, before_start: Any) -> tuple[int, int, float, str]:
    """Notes where the lane's call and Route 53 change logs stand, calls
    `before_start()`, starts the scenario's deployment of `svc`; returns
    (call_seq0, change_seq0, start time, execution ARN)."""
    call_seq0 = lane.last_call_seq()
    change_seq0 = len(lane.aws.route53_changes())
    req = request_for(svc, scenario)
    if before_start is not None:
        before_start()
    t0 = time.time()
    return call_seq0, change_seq0, t0, rig.start(lane, req, rig.execution_name(tag))


def _wait_alarm_deliveries(lane: rig.Lane, timeout: float = 30) -> None:
    """Waits until every alarm event delivery of the lane has finished, so
    no alarm-rollback call spills into the next case's call counting."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = lane.aws.alarm_events()
        pending = [d for d in info.get("deliveries", []) if "completedAt" not in d and d.get("result") != "dropped"]
        if not pending:
            return
        time.sleep(0.1)


def _run_stopped(lane: rig.Lane, w: Any, svc: Any, scenario: str, tag: str, before_start: Any, before_stop: Any, timeout: float) -> Run:
    """The repair scenario: deploy, stop the execution in its first bake
    with status change events on, wait for the repair's delivery (with
    Lambda's retries), read its record, check the repair invariants."""
    call_seq0, change_seq0, t0, arn = _start(lane, svc, scenario, tag, before_start)
    stopped_at = None
    delivery = None
    if rig.wait_for_bake(lane, arn, timeout=timeout):
        if before_stop is not None:
            before_stop()
        lane.aws.sfn_status_events(True)
        try:
            stopped_at = time.time()
            lane.sfn().stop_execution(executionArn=arn, error="Stopped", cause=f"{tag}: stopped in its first bake")
            desc = rig.wait(lane, arn, timeout=timeout)
            delivery = rig.wait_repair(lane, arn, timeout=timeout)
        finally:
            lane.aws.sfn_status_events(False)
    else:
        desc = rig.wait(lane, arn, timeout=timeout)
    seconds = time.time() - t0
    r = Run(scenario, arn, desc, seconds, call_seq0, change_seq0, stopped_at=stopped_at, delivery=delivery)
    if stopped_at is None:
        r.violations = [f"never reached its first bake: {outcome_of(desc)}"]
        return r
    r.repair = rig.repair_record(lane, arn)
    r.violations, r.observed = rig.check_repair(lane, w, svc, arn, r.outcome, since_change=change_seq0)
    return r
