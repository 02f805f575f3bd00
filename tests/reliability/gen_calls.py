"""Writes tests/reliability/calls.json: every AWS call the functions make in
one clean run of each scenario (scenarios.py), read from the local AWS call
log (`aws.calls(caller="function")`), each attributed to the state (or the
alarm-rollback or repair function) that made it.

    .venv/bin/python tests/reliability/gen_calls.py [--out PATH]

The fault matrix (matrix.py) is derived from this file; regenerate it when
the engine's calls change (test_fault_matrix.py::test_calls_json_is_current
fails when it is stale).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import rig
import scenarios

HERE = Path(__file__).resolve().parent

OUT = HERE / "calls.json"


def _epoch(t: Any) -> float:
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.timestamp()
    return float(t)


def attribute(events: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[str]:
    """Which state made each call: the Task whose [TaskStarted, end] window
    holds the call's time; calls made while a bake waits for its token
    (after TaskSubmitted) come from the alarm-rollback function."""
    windows: list[tuple[float, float, str]] = []
    state = None
    start = None
    submitted = None
    for e in events:
        d = e.get("stateEnteredEventDetails")
        if d:
            state = d["name"]
        t = _epoch(e["timestamp"])
        if e["type"] == "TaskScheduled":
            # Only the functions' Tasks make the calls recorded here: the
            # deployment events' putEvents Tasks (issue 16) open no window.
            lambda_task = e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda"
            start, submitted = (t if lambda_task else None), None
        elif e["type"] == "TaskSubmitted":
            submitted = t
        elif e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and start is not None:
            if submitted is not None:
                windows.append((start, submitted, str(state)))
                windows.append((submitted, t, "alarm-rollback function"))
            else:
                windows.append((start, t, str(state)))
            start = None
    if start is not None:
        # A Task still open when the history was read (the repair scenario
        # stops the execution while its bake waits): its window runs on.
        windows.append((start, submitted if submitted is not None else float("inf"), str(state)))
    windows.sort()
    out = []
    # The alarm-rollback function deletes the bake's record just after its
    # SendTaskFailure ended the bake, while the next state already runs: by
    # time that DeleteItem falls in the next state's window (whose function
    # makes no DynamoDB call in a clean rollback).
    bake_record_pending = False
    for c in calls:
        owner = "alarm-rollback function" if c["service"] == "stepfunctions" else None
        if (c["service"], c["operation"]) == ("stepfunctions", "SendTaskFailure"):
            bake_record_pending = True
        elif bake_record_pending and (c["service"], c["operation"]) == ("dynamodb", "DeleteItem"):
            owner, bake_record_pending = "alarm-rollback function", False
        if owner is None:
            # The latest window that opened before the call (a call is logged
            # when it arrives; the event timestamps have millisecond precision).
            opened = [w for w in windows if w[0] <= c["time"] + 0.001]
            owner = opened[-1][2] if opened else "?"
        out.append(owner)
    return out


def record(lane: rig.Lane, scenario: str) -> dict[str, Any]:
    w, svc = lane.service(prefix=f"calls{scenario[:3]}")
    # No delays while recording: the polls' counts must be reproducible (the
    # fault matrix fails the n-th call). UNKNOWN health and the CloudWatch
    # rate limit stay on.
    lane.exact(timing=False)
    try:
        r = scenarios.run(lane, w, svc, scenario, f"calls-{scenario}")
    finally:
        lane.exact(timing=True)
    if r.outcome != scenarios.SCENARIOS[scenario]["expect"] or r.violations:
        raise SystemExit(f"{scenario}: clean run ended {r.outcome} ({r.cause}); violations {r.violations}")
    calls = [c for c in lane.aws.calls(caller="function", since=r.call_seq0)]
    owners = attribute(rig.history(lane, r.execution_arn), calls)
    if r.stopped_at is not None:
        # After StopExecution only the repair function runs (the execution
        # was waiting for its bake's token: no function of its own was running).
        owners = ["repair function" if c["time"] >= r.stopped_at else o for c, o in zip(calls, owners)]
    seen: Counter[str] = Counter()
    listed = []
    for c, owner in zip(calls, owners):
        key = f"{c['service']}:{c['operation']}"
        seen[key] += 1
        listed.append({"n": seen[key], "service": c["service"], "operation": c["operation"], "status": c["status"], "by": owner})
    out = {
        "strategy": scenarios.SCENARIOS[scenario]["strategy"],
        "alarmAtFirstBake": scenarios.SCENARIOS[scenario]["alarm_at_first_bake"],
        "outcome": r.outcome,
        "states": rig.states_entered(rig.history(lane, r.execution_arn)),
        "counts": dict(sorted(seen.items())),
        "calls": listed,
    }
    if r.stopped_at is not None:
        out["stoppedInFirstBake"] = True
        out["repairCounts"] = dict(sorted(Counter(f"{c['service']}:{c['operation']}" for c in listed if c["by"] == "repair function").items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    lane = rig.Lane("calls", concurrency=1).start()
    try:
        lane.warm()
        doc: dict[str, Any] = {
            "about": "AWS calls made by the functions (caller=function in the local AWS call log) in one clean "
            "run of each scenario of tests/reliability/scenarios.py; written by tests/reliability/gen_calls.py.",
            "scenarios": {name: record(lane, name) for name in scenarios.SCENARIOS},
        }
    finally:
        lane.close()
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for name, s in doc["scenarios"].items():
        print(f"{name}: {s['outcome']}, {len(s['calls'])} calls, {len(s['counts'])} operations")
        for k, v in s["counts"].items():
            print(f"  {k} x{v}")


if __name__ == "__main__":
    main()
