"""The two deployments the fault matrix is built on, and how one is run.

- `canary`: steps 50 % then 100 %, 1 s bakes, no drain (`drainSeconds: 0`
  with `unsafeShortDrain`, since issue 13's exact drain is otherwise kept); ends SUCCEEDED.
- `rollback`: the same, but the first gate alarm goes to ALARM as soon as
  the first bake waits for its token; the alarm-rollback function moves the
  weights back, fails the bake's token, the execution rolls back and ends
  `RolledBackOnAlarm`.

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

    @property
    def outcome(self) -> str:
        return outcome_of(self.desc)


def run(lane: rig.Lane, w: Any, svc: Any, scenario: str, tag: str, before_start: Any = None, timeout: float = 600) -> Run:
    """Runs one deployment of `svc` in `scenario`. `before_start()` is called
    just before StartExecution (to add fault rules, so their call counting
    starts with this deployment)."""
    call_seq0 = lane.last_call_seq()
    change_seq0 = len(lane.aws.route53_changes())
    req = request_for(svc, scenario)
    if before_start is not None:
        before_start()
    t0 = time.time()
    arn = rig.start(lane, req, rig.execution_name(tag))
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
