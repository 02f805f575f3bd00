"""The fault matrix, derived from calls.json (never guessed), and its runner.

Fault points:
- `canary` scenario: every (service, operation) the clean canary made, at its
  first call and at its last call (when it made more than one);
- `rollback` scenario: every (service, operation) called after the alarm
  fired (by the alarm-rollback function, Roll back traffic, Delete new task
  set), at the first and the last such call.
- `repair` scenario: every (service, operation) the repair function called
  after the execution was stopped, at the first and the last such call; the
  n-th is counted from the stop (the fault is armed just before it).

Kinds: `throttle` and `5xx` fail TRANSIENT_CALLS calls in a row from that
point (more than the SDK's 3 attempts, so the function itself fails
`Retryable` and the state machine's Retry runs it again; far fewer than
SDK attempts x state machine attempts); `permanent` answers that one call
with AccessDenied, which nothing retries; `applied-5xx` (every mutating
call only) lets the call be applied, then answers that one call 500: the
ambiguous failure ("the call was applied, then its answer was lost"); the
SDK's own retry, or the function's, then meets what the first try did.

Expected: a transient fault ends as the clean run did (SUCCEEDED, or
RolledBackOnAlarm). A permanent fault ends as the clean run did or in a
named Fail whose cause names the failed operation and the error. Every run:
the invariants of rig.check_invariants.

Repair cases: the outcome is the repair's record. A transient fault ends
`restored` (the function fails `Retryable` and Lambda's asynchronous retry,
emulated by the status-event delivery, finishes it); a permanent fault ends
`restored` or `failed` with a reason that names the operation and
AccessDenied and says what was left and what to do; a permanent fault at
the record itself (StartExecution) leaves no record: the function answers
`restored` and logs the report (`unrecorded restored`). Every run:
rig.check_repair (Route 53 changes, traffic safe now, restored = old slot
100 % and the execution's task set gone).
"""

from __future__ import annotations

import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rig
import scenarios

HERE = Path(__file__).resolve().parent
CALLS_JSON = HERE / "calls.json"
KINDS = ("throttle", "5xx", "permanent", "applied-5xx")
# Which calls change something (the ambiguous failure is asked only of them).
READ_PREFIXES = ("Describe", "List", "Get")
TRANSIENT_CALLS = 4
REPAIR_OWNER = "repair function"
ROLLBACK_OWNERS = {"alarm-rollback function", "Alarm fired", "Roll back traffic", "Drain new task set", "Delete new task set"}

# Case ids run by `make test` (the fast subset); the whole matrix is `slow`.
FAST = (
    "canary-route53.ChangeResourceRecordSets#1-throttle",
    "canary-ecs.CreateTaskSet#1-5xx",
    "canary-route53.ChangeResourceRecordSets#4-permanent",
    "canary-ecs.DeleteTaskSet#1-permanent",
    "rollback-stepfunctions.SendTaskFailure#1-permanent",
    "rollback-route53.ChangeResourceRecordSets#4-5xx",
    "canary-ecs.CreateTaskSet#1-applied-5xx",
    "canary-route53.ChangeResourceRecordSets#1-applied-5xx",
    "canary-route53.ChangeResourceRecordSets#4-applied-5xx",
    # Issue 15: the repair of a stopped deployment, one transient and one
    # permanent fault at its weight change.
    "repair-route53.ChangeResourceRecordSets#1-5xx",
    "repair-route53.ChangeResourceRecordSets#1-permanent",
)

@dataclass(frozen=True)
class Case:
    scenario: str
    service: str
    operation: str
    n: int
    position: str  # "first" or "last" call of the operation (in the scenario part)
    by: str  # the state (or function) that made that call in the clean run
    kind: str

    @property
    def id(self) -> str:
        return f"{self.scenario}-{self.service}.{self.operation}#{self.n}-{self.kind}"

    @property
    def point(self) -> str:
        return f"{self.service}:{self.operation} #{self.n}"

    @property
    def transient(self) -> bool:
        return self.kind != "permanent"

    @property
    def expected(self) -> str:
        return scenarios.SCENARIOS[self.scenario]["expect"]

    @property
    def repair(self) -> bool:
        return bool(scenarios.SCENARIOS[self.scenario].get("stop_at_first_bake"))


def load_calls() -> dict[str, Any]:
    return json.loads(CALLS_JSON.read_text())


def derive(doc: dict[str, Any] | None = None) -> list[Case]:
    doc = doc or load_calls()
    cases: list[Case] = []
    for scenario, data in doc["scenarios"].items():
        calls = data["calls"]
        if scenario == "rollback":
            calls = [c for c in calls if c["by"] in ROLLBACK_OWNERS]
        elif scenarios.SCENARIOS[scenario].get("stop_at_first_bake"):
            # Counted from the stop: n-th call of the repair function.
            seen_repair: dict[tuple[str, str], int] = {}
            mine = []
            for c in calls:
                if c["by"] == REPAIR_OWNER:
                    key = (c["service"], c["operation"])
                    seen_repair[key] = seen_repair.get(key, 0) + 1
                    mine.append(dict(c, n=seen_repair[key]))
            calls = mine
        points: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for c in calls:
            points.setdefault((c["service"], c["operation"]), []).append(c)
        for (service, operation), seen in points.items():
            picks = [("first", seen[0])]
            if len(seen) > 1:
                picks.append(("last", seen[-1]))
            for position, call in picks:
                for kind in KINDS:
                    if kind == "applied-5xx" and operation.startswith(READ_PREFIXES):
                        continue
                    cases.append(Case(scenario, service, operation, call["n"], position, call["by"], kind))
    return cases


@dataclass
class Result:
    case: Case
    outcome: str = "not run"
    cause: str = ""
    seconds: float = 0.0
    fired: int = 0
    violations: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)
    task_sets: list[str] = field(default_factory=list)
    changes: int = 0
    lane: str = ""

    @property
    def held(self) -> bool:
        return not self.violations and not self.problems

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "case"}
        d.update(id=self.case.id, **asdict(self.case), expected=self.case.expected, held=self.held)
        return d


def judge(r: Result) -> None:
    c = r.case
    if r.fired == 0:
        r.problems.append("the fault never fired (the call was not reached)")
    if c.repair:
        _judge_repair(r)
        return
    if c.transient and r.outcome != c.expected:
        r.problems.append(f"transient {c.kind} at {c.point} ended {r.outcome}, expected {c.expected}: {r.cause}")
    if not c.transient and r.outcome != c.expected:
        if c.operation not in r.cause or "AccessDenied" not in r.cause:
            r.problems.append(f"{r.outcome}: the cause does not name {c.operation} and AccessDenied: {r.cause}")


def _judge_repair(r: Result) -> None:
    c = r.case
    if c.transient and r.outcome != "restored":
        r.problems.append(f"transient {c.kind} at {c.point} during the repair ended {r.outcome}, expected restored: {r.cause}")
    if not c.transient and r.outcome != "restored":
        if r.outcome == "failed":
            for word in (c.operation, "AccessDenied", "left:", "to do:"):
                if word not in r.cause:
                    r.problems.append(f"failed repair: the reason does not say {word!r}: {r.cause}")
        elif not (r.outcome == "unrecorded restored" and (c.service, c.operation) == ("stepfunctions", "StartExecution")):
            r.problems.append(f"permanent fault at {c.point} during the repair ended {r.outcome}: {r.cause}")
    # Honest: a reason that says nothing was changed, with the traffic moved.
    if "nothing was changed" in r.cause and r.weights != {"blue": 50, "green": 50}:
        r.problems.append(f"the reason says nothing was changed, but the weights are {r.weights}: {r.cause}")


def run_case(lane: rig.Lane, case: Case) -> Result:
    r = Result(case, lane=lane.name)
    try:
        w, svc = lane.service(prefix="m")
        aws = lane.aws
        aws.clear_faults()
        rule: dict[str, Any] = {}

        def arm() -> None:
            if case.kind == "applied-5xx":
                rule.update(aws.fail_next(case.service, case.operation, case.kind, nth=case.n))
            elif case.transient:
                rule.update(aws.fail_calls(case.service, case.operation, case.kind, first=case.n, last=case.n + TRANSIENT_CALLS - 1))
            else:
                rule.update(aws.fail_next(case.service, case.operation, "permanent", nth=case.n))

        # The n-th call of calls.json is the n-th call only without delays
        # (polls would add calls): the fault points run with timing off.
        lane.exact(timing=False)
        try:
            tag = case.id.replace(".", "-").replace("#", "n")
            if case.repair:
                run = scenarios.run(lane, w, svc, case.scenario, tag, before_stop=arm)
            else:
                run = scenarios.run(lane, w, svc, case.scenario, tag, before_start=arm)
        finally:
            lane.exact(timing=True)
        fired = [f for f in aws.faults() if f["id"] == rule.get("id")]
        aws.clear_faults()
        r.fired = len(fired[0]["fired"]) if fired else 0
        r.outcome = run.outcome
        r.cause = run.cause
        r.seconds = round(run.seconds, 1)
        r.violations = list(run.violations)
        if run.observed is not None:
            r.weights = run.observed.weights
            r.task_sets = [f"{t['externalId']}:{t['status']}@{t['slot']}" for t in run.observed.task_sets]
            r.changes = len(run.observed.changes)
        judge(r)
        if r.outcome == "RolledBackOnAlarm" and svc.alarms[0] not in r.cause:
            r.problems.append(f"the RolledBackOnAlarm cause does not name the alarm {svc.alarms[0]}: {r.cause}")
    except Exception as e:  # noqa: BLE001 - one broken case must not stop the matrix
        r.problems.append(f"harness error: {e!r}\n{traceback.format_exc()}")
        try:
            lane.aws.clear_faults()
        except Exception:  # noqa: BLE001
            pass
    return r


def run_cases(lanes: list[rig.Lane], cases: list[Case]) -> tuple[list[Result], float]:
    """Runs the cases, one at a time per lane, lanes side by side. Returns
    results in case order and the wall time."""
    t0 = time.time()
    queues: list[list[tuple[int, Case]]] = [[] for _ in lanes]
    # Longest first (rollback cases wait for a bake), spread round robin.
    order = sorted(enumerate(cases), key=lambda ic: (ic[1].scenario != "rollback", ic[0]))
    for i, (idx, case) in enumerate(order):
        queues[i % len(lanes)].append((idx, case))
    results: list[Result | None] = [None] * len(cases)

    def work(lane_queue: tuple[rig.Lane, list[tuple[int, Case]]]) -> None:
        lane, queue = lane_queue
        for idx, case in queue:
            results[idx] = run_case(lane, case)

    with ThreadPoolExecutor(len(lanes)) as pool:
        list(pool.map(work, zip(lanes, queues)))
    return [r for r in results if r is not None], time.time() - t0


# ------------------------------------------------------------------ report


def _cell(r: Result | None) -> str:
    if r is None:
        return "–"  # not a case (applied-5xx: reads only)
    mark = "✓" if r.held else "✗"
    return f"{mark} {r.outcome}"


def report(results: list[Result], wall: float, lanes: int) -> tuple[str, dict[str, Any]]:
    by_point: dict[tuple[str, str, str], dict[str, Result]] = {}
    for r in results:
        c = r.case
        by_point.setdefault((c.scenario, c.point, c.by), {})[c.kind] = r
    held = sum(r.held for r in results)
    points = len(by_point)
    lines = [
        "# Fault matrix results",
        "",
        "Generated by `tests/reliability/test_fault_matrix.py` (whole matrix: "
        "`.venv/bin/python -m pytest -q tests/reliability/test_fault_matrix.py`). Fault points come from "
        "`calls.json` (a real run of each scenario); see `matrix.py` for the rules.",
        "",
        f"**{points} fault points, {len(KINDS)} kinds (applied-5xx at mutating calls only): {len(results)} runs, {held} held, "
        f"{len(results) - held} did not.** Wall time {wall:.0f} s on {lanes} local AWS lanes "
        f"(sum of execution times {sum(r.seconds for r in results):.0f} s).",
        "",
        "✓ = every invariant held and the outcome is the expected one (transient: as the clean run; "
        "permanent: as the clean run, or a named Fail whose cause names the operation and AccessDenied).",
        "",
        "| scenario | fault point | made by (clean run) | throttle ×4 | 5xx ×4 | permanent ×1 | applied, answer lost ×1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for (scenario, point, by), kinds in by_point.items():
        lines.append(f"| {scenario} | `{point}` | {by} | " + " | ".join(_cell(kinds.get(k)) for k in KINDS) + " |")
    bad = [r for r in results if not r.held]
    if bad:
        lines += ["", "## Did not hold", ""]
        for r in bad:
            lines.append(f"- `{r.case.id}`: {r.outcome}; " + "; ".join(r.problems + r.violations).replace("\n", " ")[:600])
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    lines += ["", "## Outcomes", "", "| outcome | runs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])]
    doc = {
        "wallSeconds": round(wall, 1),
        "lanes": lanes,
        "points": points,
        "runs": len(results),
        "held": held,
        "outcomes": outcomes,
        "results": [r.to_json() for r in results],
    }
    return "\n".join(lines) + "\n", doc
