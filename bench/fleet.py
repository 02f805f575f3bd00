"""The fleet benchmark (issue 17 item 3): N deployments baking at once on the
local AWS, one alarm fires; how long until the watching deployment's weights
are back, and which AWS calls the alarm path made. Run with both ways of
finding the bakes: the bake registry (one DynamoDB Query by alarm name,
shared/src/aws/bakes.rs) and the history scan it replaced (ListExecutions +
one GetExecutionHistory per running execution; the function's fallback when
the table cannot be read, forced here by failing its Query).

What the N is. One deployment per (N, way) is real: a service of
local/canarytest/world.py's world deployed by the real state machine and functions
(cargo lambda watch, debug builds) up to its first bake (600 s). The other
N - 1 are *parked bakes*: executions of the same state machine (same ARN:
the scan lists them) whose definition, at their start, is the real `Bake`
state alone (copied from statemachine/deployment.asl.json with its Catch
removed; moto keeps each execution's definition as it was at its start, as
Step Functions does). Each calls the real check-health with a real task
token, so it runs the real alarm gate and writes real registry records,
and its history holds a real bake's TaskScheduled event; it watches an alarm
of its own (`fleet-<i>`). They do no ECS / Cloud Map / Route 53 work: their
histories are shorter than a real deployment's (a real one has about 30
events at its first bake, a parked one 5), which favours the scan.

API limits emulated at their documented rates, for the functions' calls:
Step Functions (GetExecutionHistory 400 / 20 per s, ListExecutions 200 / 5,
... localaws.ratelimit.STEPFUNCTIONS_RATES), CloudWatch (DescribeAlarms 9/s,
DescribeAlarmHistory 20/s) and Route 53 (5/s).

The gate at scale: parking a burst of bakes runs that many alarm-gate
checks at once (check-health at each bake's start). Reported per burst: the
CloudWatch calls per check, how many were throttled, how long until every
bake of the burst waited for its token, and how many bakes failed (a
throttling-induced rollback would be one).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import time
from collections import Counter
from typing import Any

from common import REPO, RESULTS_DIR

from canarytest import world
from localaws import LocalAws

PROFILES = {"full": (20, 100, 200), "quick": (20, 100, 200), "smoke": (3,)}
PARKED_BAKE_S = 3600
WATCHER_BAKE_S = 600
# The alarm path's own calls (alarm-rollback's): everything it may call.
PATH_SERVICES = {"dynamodb", "stepfunctions", "route53", "servicediscovery"}


def parked_definition() -> str:
    """The real Bake state alone, with the local function names."""
    asl = json.loads((REPO / "statemachine" / "deployment.asl.json").read_text())
    bake = copy.deepcopy(asl["States"]["Bake"])
    bake.pop("Catch", None)
    bake.pop("Next", None)
    bake["End"] = True
    text = json.dumps({"Comment": "bench/fleet.py: a parked bake", "StartAt": "Bake", "States": {"Bake": bake}})
    subs = json.loads((REPO / "statemachine" / "local-substitutions.json").read_text())
    for key, value in subs.items():
        text = text.replace("${" + key + "}", value)
    return text


def parked_input(svc: Any, alarm: str) -> dict[str, Any]:
    """What the Bake state reads from a deployment's state at its first bake."""
    return {
        "deployment": {
            "alarms": {"names": [alarm], "insufficientData": "pass"},
            "target": svc.target(),
            "liveSlot": "blue",
            "strategy": {"bakeSeconds": PARKED_BAKE_S, "originalTtlSeconds": svc.cname_ttl},
        },
        "gate": {"observedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        "step": {"label": "step 1 of 2 (10%)"},
    }


def _bake_waiting(sfn: Any, arn: str) -> str:
    """'waiting' once the Bake's task was submitted, 'failed' when the
    execution ended, '' while it is getting there."""
    d = sfn.describe_execution(executionArn=arn)
    if d["status"] != "RUNNING":
        return "failed"
    ev = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return "waiting" if any(e["type"] == "TaskSubmitted" for e in ev) else ""


def park(aws: Any, w: Any, svc: Any, first: int, count: int, timeout: float = 600.0) -> dict[str, Any]:
    """Parks `count` bakes (alarms fleet-<first>...) at once and waits until
    each waits for its token. The state machine's definition is the parked
    one only while they start."""
    sfn, cw = aws.client("stepfunctions"), aws.client("cloudwatch")
    for i in range(first, first + count):
        name = f"fleet-{i}"
        cw.put_metric_alarm(AlarmName=name, Namespace="Fleet", MetricName="Errors", Statistic="Sum", Period=10,
                            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
        aws.set_alarm_state(name, "OK", "fleet: quiet")
    real = json.dumps(json.loads(parked_definition()))  # validated JSON
    seq0 = max((c["seq"] for c in aws.calls()), default=0)
    sfn.update_state_machine(stateMachineArn=w.state_machine_arn, definition=real)
    arns = []
    t0 = time.time()
    try:
        for i in range(first, first + count):
            arns.append(sfn.start_execution(stateMachineArn=w.state_machine_arn, name=f"fleet-{i}",
                                            input=json.dumps(parked_input(svc, f"fleet-{i}")))["executionArn"])
    finally:
        world.create_state_machine(aws)  # the real definition back for the next deployments
    pending = set(arns)
    failed: list[str] = []
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        for arn in list(pending):
            state = _bake_waiting(sfn, arn)
            if state:
                pending.discard(arn)
                if state == "failed":
                    failed.append(arn)
        if pending:
            time.sleep(0.5)
    parked_s = time.time() - t0
    calls = [c for c in aws.calls(caller="function", since=seq0)]
    cw_calls = [c for c in calls if c["service"] == "cloudwatch"]
    throttled = [c for c in cw_calls if (c.get("fault") or {}).get("kind") == "throttle"]
    return {
        "bakes": count,
        "arns": arns,
        "parkedS": round(parked_s, 2),
        "notParked": len(pending),
        "failedBakes": len(failed),
        "cloudwatchCalls": len(cw_calls),
        "cloudwatchByOperation": dict(Counter(c["operation"] for c in cw_calls)),
        "cloudwatchThrottled": len(throttled),
        "cloudwatchCallsPerCheck": round(len(cw_calls) / count, 2) if count else None,
        "dynamodbPutItem": sum(1 for c in calls if c["service"] == "dynamodb" and c["operation"] == "PutItem"),
    }


def _bake_started(sfn: Any, arn: str) -> bool:
    ev = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    in_bake = False
    for e in sorted(ev, key=lambda e: e["id"]):
        det = e.get("stateEnteredEventDetails")
        if det:
            in_bake = det.get("name") == "Bake"
        if in_bake and e["type"] == "TaskSubmitted":
            return True
    return False


def _weights_back(change: dict[str, Any], record: str) -> bool:
    recs = (change.get("records") or {}).get(record.rstrip(".").lower()) or []
    weights = {r.get("setIdentifier"): r.get("weight") for r in recs}
    return weights.get("blue") == 100 and weights.get("green") == 0


def alarm_once(aws: Any, w: Any, svc: Any, n: int, way: str, tag: int) -> dict[str, Any]:
    """Deploys `svc` to its first bake, fires its alarm, measures."""
    sfn = aws.client("stepfunctions")
    req = svc.request(f"{world.IMAGE_REPO}:v{tag}", steps=(10, 100), bake=WATCHER_BAKE_S, unsafeShortDrain=True)
    arn = sfn.start_execution(stateMachineArn=w.state_machine_arn, name=f"{svc.name}-n{n}-{way}",
                              input=json.dumps(req))["executionArn"]
    deadline = time.time() + 180
    while not _bake_started(sfn, arn):
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING" or time.time() > deadline:
            raise RuntimeError(f"{svc.name}: never reached its bake ({d['status']} {d.get('error')} {d.get('cause')})")
        time.sleep(0.2)
    running = len(sfn.list_executions(stateMachineArn=w.state_machine_arn, statusFilter="RUNNING",
                                      maxResults=1000)["executions"])
    if way == "historyScan":
        # The registry unreachable: its Query fails, alarm-rollback falls back.
        aws.fail_next("dynamodb", "Query", kind="permanent")
    r53_seq = max((c["seq"] for c in aws.route53_changes()), default=0)
    call_seq = max((c["seq"] for c in aws.calls()), default=0)
    set_at = time.time()
    alarm = svc.alarms[0]
    aws.set_alarm_state(alarm, "ALARM", "fleet benchmark")
    back = None
    deadline = time.time() + 120
    while back is None and time.time() < deadline:
        back = next((c for c in aws.route53_changes(since=r53_seq)
                     if c.get("caller") == "function" and _weights_back(c, svc.record_name)), None)
        if back is None:
            time.sleep(0.01)
    delivery = None
    deadline = time.time() + 120
    while delivery is None and time.time() < deadline:
        done = [d for d in aws.alarm_events()["deliveries"]
                if d["alarmName"] == alarm and d["state"] == "ALARM" and d.get("completedAt") and d.get("emittedAt", 0) >= set_at - 1]
        delivery = done[-1] if done else None
        if delivery is None:
            time.sleep(0.05)
    if back is None or delivery is None:
        raise RuntimeError(f"{svc.name} N={n} {way}: weights not back ({back is not None}) or event not delivered")
    calls = [c for c in aws.calls(caller="function", since=call_seq)
             if delivery["invokedAt"] <= c["time"] <= delivery["completedAt"] and c["service"] in PATH_SERVICES]
    fail_at = next((c["time"] for c in calls if c["operation"] == "SendTaskFailure"), delivery["completedAt"])
    # After SendTaskFailure the execution's own rollback path may call
    # Route 53 / Cloud Map too: only alarm-rollback's are counted.
    path = [c for c in calls if c["service"] in ("dynamodb", "stepfunctions") or c["time"] <= fail_at]
    ops = Counter(f'{c["service"]}:{c["operation"]}' for c in path)
    response = delivery.get("response") or {}
    with contextlib.suppress(Exception):
        sfn.stop_execution(executionArn=arn, error="Benchmark", cause="measured")
    return {
        "n": n,
        "way": way,
        "runningExecutions": running,
        "lookup": response.get("lookup"),
        "eventToWeightsBackMs": round((back["time"] - delivery["invokedAt"]) * 1000, 1),
        "handlerMs": delivery.get("handlerMs"),
        "alarmPathCalls": sum(ops.values()),
        "alarmPathByOperation": dict(sorted(ops.items())),
        "throttled": sum(1 for c in path if (c.get("fault") or {}).get("kind") == "throttle"),
        "actions": [a.get("action") for a in response.get("executions", [])],
    }


def run(profile: str = "full", sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    sizes = sizes or PROFILES[profile]
    started = time.time()
    ways = ("registry", "historyScan")
    names = [f"fw{i}" for i in range(len(sizes) * len(ways))]
    out: dict[str, Any] = {"profile": profile, "sizes": list(sizes), "lambdaService": "cargo lambda watch (debug builds)",
                           "runs": [], "gate": [], "errors": []}
    with LocalAws(run_dir=RESULTS_DIR / "run" / "fleet") as aws:
        w = world.build(aws, services=("fleet", *names))
        # The bench sets every alarm's state itself.
        aws.alarm_evaluation(enabled=False)
        aws.stepfunctions_rate_limit(True, caller="function")
        aws.cloudwatch_rate_limit(True, caller="function")
        aws.route53_rate_limit(True, caller="function")
        out["limits"] = {"stepfunctions": aws.stepfunctions_rate_limit(True, caller="function")["rates"]}
        parked = 0
        svc_iter = iter(names)
        tag = 2
        for n in sizes:
            want = n - 1
            if want > parked:
                g = park(aws, w, w.services["fleet"], parked, want - parked)
                g["parkedTotal"] = want
                out["gate"].append({k: v for k, v in g.items() if k != "arns"})
                parked = want
            for way in ways:
                svc = w.services[next(svc_iter)]
                try:
                    out["runs"].append(alarm_once(aws, w, svc, n, way, tag))
                except Exception as e:  # noqa: BLE001 - the other sizes still run
                    out["errors"].append(f"N={n} {way}: {type(e).__name__}: {e}")
                tag += 1
        out["stepfunctionsLimit"] = aws.stepfunctions_rate_limit(True, caller="function")
    out["wallS"] = round(time.time() - started, 1)
    return out


def table_rows(f: dict[str, Any]) -> list[tuple[str, str, tuple[str, str, str], str, Any]]:
    rows = []
    by_way: dict[str, list[dict[str, Any]]] = {}
    for r in f.get("runs", []):
        by_way.setdefault(r["way"], []).append(r)
    for r in f.get("runs", []):
        label = "bake registry (1 Query)" if r["way"] == "registry" else "history scan (fallback)"
        ops = ", ".join(f"{k} {v}" for k, v in r["alarmPathByOperation"].items())
        met: Any = r["eventToWeightsBackMs"] <= 1000 if r["way"] == "registry" else ""
        rows.append(("fleet: alarm -> weights back, ms (n=1)",
                     f"N={r['n']} baking ({r['runningExecutions']} running), {label}",
                     (f"{r['eventToWeightsBackMs']:.0f}", "", ""), "<= 1000" if r["way"] == "registry" else "", met))
        rows.append(("fleet: alarm path AWS calls", f"N={r['n']}, {label}: {ops}",
                     (str(r["alarmPathCalls"]), "", ""), "", ""))
    reg = [r["alarmPathCalls"] for r in by_way.get("registry", [])]
    if reg:
        rows.append(("fleet: registry calls independent of N", f"N={', '.join(str(r['n']) for r in by_way['registry'])}: {reg}",
                     (str(reg[-1]), "", ""), "constant", len(set(reg)) == 1))
    for g in f.get("gate", []):
        ops = ", ".join(f"{k} {v}" for k, v in g["cloudwatchByOperation"].items())
        rows.append(("fleet: gate CloudWatch calls per check",
                     f"{g['bakes']} bake starts at once (to N-1={g['parkedTotal']} parked): {ops}; throttled {g['cloudwatchThrottled']}; "
                     f"all waiting after {g['parkedS']} s",
                     (f"{g['cloudwatchCallsPerCheck']}", "", ""), "0 failed bakes", g["failedBakes"] == 0 and g["notParked"] == 0))
    return rows
