"""The benchmarks that run whole deployments on the local AWS (local/):
orchestration overhead, rollback reaction, cost per deployment.

Two Lambda services can run the functions:
- "cargo": `cargo lambda watch` (the harness default: debug builds started
  lazily through `cargo run`);
- "release": bench/mini_lambda.py running the release binaries (what ships).

The world (VPC, Cloud Map, ECS, zone, alarms, state machine) is built by
local/canarytest/world.py through the AWS APIs."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections import Counter
from typing import Any, Iterator

from common import RESULTS_DIR, summary

from canarytest import world
from localaws import LocalAws

PRICE_PER_1000_TRANSITIONS = 0.025
POLL_S = 0.025
_DEPLOYMENT_NUMBERS = itertools.count(1)  # execution names and image tags stay unique


@contextlib.contextmanager
def local_aws(lambda_service: str, services: list[str]) -> Iterator[tuple[Any, Any]]:
    """A fresh local AWS with a world of `services`, the functions served by
    `lambda_service` ("cargo" or "release")."""
    run_dir = RESULTS_DIR / "run" / lambda_service
    if lambda_service == "cargo":
        with LocalAws(run_dir=run_dir) as aws:
            yield aws, world.build(aws, services=tuple(services))
        return
    from mini_lambda import MiniLambda

    with LocalAws(run_dir=run_dir, lambda_mode="none") as aws:
        env = aws.info().get("functionEnv") or aws.endpoints.get("functionEnv") or {}
        with MiniLambda(env, run_dir / "mini-lambda.log") as mini:
            aws.point_lambda(mini.url)
            yield aws, world.build(aws, services=tuple(services))


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return sorted(events, key=lambda e: e["id"])


def wait_done(sfn: Any, arn: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(POLL_S)
    raise TimeoutError(f"{arn} still RUNNING after {timeout:.0f} s")


class Deployer:
    """Starts deployments of one service with a fresh image tag each time."""

    def __init__(self, aws: Any, w: Any) -> None:
        self.aws, self.w = aws, w
        self.sfn = aws.client("stepfunctions")

    def start(self, svc_name: str, strategy: dict[str, Any] | None) -> tuple[str, float]:
        """strategy None: the product's defaults (no strategy in the input)."""
        n = next(_DEPLOYMENT_NUMBERS)
        svc = self.w.services[svc_name]
        req = svc.request(f"{world.IMAGE_REPO}:v{n + 1}")
        req["strategy"] = strategy or {}
        if strategy is None:
            del req["strategy"]
        t0 = time.time()
        arn = self.sfn.start_execution(
            stateMachineArn=self.w.state_machine_arn, name=f"{svc_name}-bench-{n}", input=json.dumps(req)
        )["executionArn"]
        return arn, t0

    def deploy(self, svc_name: str, strategy: dict[str, Any] | None) -> dict[str, Any]:
        arn, t0 = self.start(svc_name, strategy)
        d = wait_done(self.sfn, arn)
        t1 = time.time()
        out = {
            "executionArn": arn,
            "status": d["status"],
            "clientWallS": t1 - t0,
            "serverWallS": (d["stopDate"] - d["startDate"]).total_seconds(),
        }
        if d["status"] != "SUCCEEDED":
            out["error"], out["cause"] = d.get("error"), d.get("cause")
        return out


# readyPollSeconds 1: the engine refuses 0 (a ready task set is not waited
# for); allowShortBake: a bake of 0 s is shorter than the world's 10-s alarms
# need (BakeTooShort), which these control-plane figures accept knowingly.
ZERO_WAITS = {"steps": [10, 50, 100], "bakeSeconds": 0, "readyPollSeconds": 1, "drainSeconds": 0, "readyTimeoutSeconds": 60,
              "allowShortBake": True}


def orchestration(aws: Any, w: Any, reps: int, svc_name: str) -> dict[str, Any]:
    """A 3-step canary with every wait 0: StartExecution -> SUCCEEDED."""
    dep = Deployer(aws, w)
    warm = dep.deploy(svc_name, ZERO_WAITS)
    if warm["status"] != "SUCCEEDED":
        raise RuntimeError(f"warm-up deployment {warm['status']}: {warm.get('error')} {warm.get('cause')}")
    runs = []
    for _ in range(reps):
        r = dep.deploy(svc_name, ZERO_WAITS)
        if r["status"] != "SUCCEEDED":
            raise RuntimeError(f"deployment {r['status']}: {r.get('error')} {r.get('cause')}")
        ev = history(dep.sfn, r["executionArn"])
        r["states"] = sum(1 for e in ev if e["type"].endswith("StateEntered"))
        runs.append(r)
    return {
        "strategy": ZERO_WAITS,
        "warmupS": round(warm["serverWallS"], 3),
        "serverWallS": summary([r["serverWallS"] for r in runs]),
        "clientWallS": summary([r["clientWallS"] for r in runs]),
        "statesEntered": runs[0]["states"] if runs else None,
        "target": "<= 2 s",
        "targetMet": bool(runs) and summary([r["serverWallS"] for r in runs])["median"] <= 2.0,
    }


def _bake_started(ev: list[dict[str, Any]]) -> bool:
    """The execution waits in its Bake (a .waitForTaskToken task submitted)."""
    in_bake = False
    for e in ev:
        det = e.get("stateEnteredEventDetails")
        if det:
            in_bake = det.get("name") == "Bake"
        if in_bake and e["type"] == "TaskSubmitted":
            return True
    return False


def _weights_back(change: dict[str, Any], record: str, live: str) -> bool:
    """The change left the live slot at 100 and every other record at 0.
    `records`: normalised name -> every record of that name after the change."""
    records = change.get("records")
    if not isinstance(records, dict):
        return False
    recs = records.get(record.rstrip(".").lower()) or []
    weights = {r.get("setIdentifier"): r.get("weight") for r in recs}
    return weights.get(live) == 100 and all(v == 0 for k, v in weights.items() if k != live)


def rollback(aws: Any, w: Any, reps: int, svc_names: list[str]) -> dict[str, Any]:
    """Default strategy (bake 300 s): once the first step bakes, the alarm
    goes to ALARM; measured from the alarm event's delivery to alarm-rollback
    (the harness invokes it) to the Route 53 change that puts both weights
    back (both timestamps from the harness's clock). The first run is a
    warm-up (every function started). Each run deploys its own service; the
    execution is stopped once it has left its bake (its rollback path then
    only drains and deletes)."""
    dep = Deployer(aws, w)
    runs = []
    for i, name in enumerate(svc_names[: reps + 1]):
        svc = w.services[name]
        arn, _ = dep.start(name, None)
        deadline = time.time() + 120
        while not _bake_started(history(dep.sfn, arn)):
            d = dep.sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING" or time.time() > deadline:
                raise RuntimeError(f"{name}: never reached its bake ({d['status']} {d.get('error')} {d.get('cause')})")
            time.sleep(0.1)
        weights_before = world.weights(w, svc)
        live = max(weights_before, key=lambda k: weights_before[k])
        r53_seq = max((c["seq"] for c in aws.route53_changes()), default=0)
        set_at = time.time()
        aws.set_alarm_state(svc.alarms[0], "ALARM", "benchmark: errors over threshold")
        back = None
        deadline = time.time() + 60
        while back is None and time.time() < deadline:
            for c in aws.route53_changes(since=r53_seq):
                if c.get("caller") == "function" and _weights_back(c, svc.record_name, live):
                    back = c
                    break
            if back is None:
                time.sleep(0.01)
        if back is None:
            raise RuntimeError(f"{name}: weights not back within 60 s of the alarm")
        deliveries = [
            d
            for d in aws.alarm_events()["deliveries"]
            if d["alarmName"] == svc.alarms[0] and d["state"] == "ALARM" and d.get("emittedAt", 0) >= set_at - 1
        ]
        deadline = time.time() + 60
        while not (deliveries and deliveries[-1].get("result")) and time.time() < deadline:
            time.sleep(0.05)
            deliveries = [d for d in aws.alarm_events()["deliveries"] if d["alarmName"] == svc.alarms[0] and d["state"] == "ALARM" and d.get("emittedAt", 0) >= set_at - 1]
        delivery = deliveries[-1]
        # The execution leaves its bake: wait for the rollback path, then stop it.
        left_bake = None
        deadline = time.time() + 60
        while left_bake is None and time.time() < deadline:
            for e in history(dep.sfn, arn):
                det = e.get("stateEnteredEventDetails") or {}
                if det.get("name") in ("Alarm fired", "Roll back traffic"):
                    left_bake = e["timestamp"].timestamp()
                    break
            if left_bake is None:
                time.sleep(0.05)
        with contextlib.suppress(Exception):
            dep.sfn.stop_execution(executionArn=arn, error="Benchmark", cause="measured; stopped during its rollback drain")
        window = [
            f'{c["service"]}:{c["operation"]}'
            for c in aws.calls(caller="function")
            if delivery["invokedAt"] <= c["time"] <= back["time"]
        ]
        run = {
            "service": name,
            "callsUntilWeightsBack": window,
            "warmup": i == 0,
            "eventToWeightsBackMs": (back["time"] - delivery["invokedAt"]) * 1000,
            "alarmStateToWeightsBackMs": (back["time"] - delivery["emittedAt"]) * 1000,
            "setAlarmCallToWeightsBackMs": (back["time"] - set_at) * 1000,
            "eventToBakeLeftMs": (left_bake - delivery["invokedAt"]) * 1000 if left_bake else None,
            "weightsBefore": weights_before,
            "deliveryResult": delivery.get("result"),
        }
        runs.append(run)
    measured = [r for r in runs if not r["warmup"]]
    return {
        "strategy": "product defaults (steps 10/50/100, bake 300 s)",
        "eventToWeightsBackMs": summary([r["eventToWeightsBackMs"] for r in measured], 1),
        "alarmStateToWeightsBackMs": summary([r["alarmStateToWeightsBackMs"] for r in measured], 1),
        "eventToBakeLeftMs": summary([r["eventToBakeLeftMs"] for r in measured if r["eventToBakeLeftMs"] is not None], 1),
        "runs": runs,
    }


def cost(aws: Any, w: Any, svc_name: str, bakes: tuple[int, int] = (1, 5)) -> dict[str, Any]:
    """State transitions (each StateEntered, plus retries: a task scheduled
    again within one state entry) and AWS calls made by the functions, per
    service, for a 3-step canary with two bake lengths."""
    dep = Deployer(aws, w)
    # Warm every function first (cargo-lambda starts them lazily), so both
    # measured runs see the same service.
    dep.deploy(svc_name, {"steps": [10, 50, 100], "bakeSeconds": 0, "readyPollSeconds": 1, "drainSeconds": 0, "readyTimeoutSeconds": 60, "allowShortBake": True})
    out: dict[str, Any] = {"pricePer1000Transitions": PRICE_PER_1000_TRANSITIONS, "runs": []}
    for bake in bakes:
        call_seq = max((c["seq"] for c in aws.calls()), default=0)
        strategy = {"steps": [10, 50, 100], "bakeSeconds": bake, "readyPollSeconds": 1, "drainSeconds": 0, "readyTimeoutSeconds": 60,
                    "allowShortBake": True}
        r = dep.deploy(svc_name, strategy)
        ev = history(dep.sfn, r["executionArn"])
        types = Counter(e["type"] for e in ev)
        names = Counter((e.get("stateEnteredEventDetails") or {}).get("name") for e in ev if e["type"].endswith("StateEntered"))
        entered = sum(n for t, n in types.items() if t.endswith("StateEntered"))
        scheduled = types.get("TaskScheduled", 0) + types.get("LambdaFunctionScheduled", 0)
        task_entries = types.get("TaskStateEntered", 0)
        retries = max(0, scheduled - task_entries)
        # The deployment events' Tasks (events:putEvents) invoke no function.
        event_tasks = sum(
            1 for e in ev
            if e["type"] == "TaskScheduled" and (e.get("taskScheduledEventDetails") or {}).get("resourceType") == "events"
        )
        calls = [c for c in aws.calls(since=call_seq) if c.get("caller") == "function"]
        per_service = Counter(c["service"] for c in calls)
        r53 = Counter(c["operation"] for c in calls if c["service"] == "route53")
        per_op = Counter(f'{c["service"]}:{c["operation"]}' for c in calls)
        transitions = entered + retries
        out["runs"].append(
            {
                "bakeSeconds": bake,
                "status": r["status"],
                "wallS": round(r["serverWallS"], 2),
                "stateTransitions": transitions,
                "statesEntered": entered,
                "retries": retries,
                "lambdaInvocations": scheduled - event_tasks,
                "eventsPut": event_tasks,
                "awsCallsByService": dict(sorted(per_service.items())),
                "awsCallsTotal": len(calls),
                "awsCallsByOperation": dict(sorted(per_op.items())),
                "route53Calls": sum(r53.values()),
                "route53ByOperation": dict(sorted(r53.items())),
                "priceUSD": round(transitions * PRICE_PER_1000_TRANSITIONS / 1000, 6),
                "eventTypes": dict(sorted(types.items())),
                "statesEnteredByName": dict(names),
            }
        )
    a, b = out["runs"][0], out["runs"][1] if len(out["runs"]) > 1 else out["runs"][0]
    keys = ("stateTransitions", "lambdaInvocations", "awsCallsByService", "route53ByOperation")
    out["equalAcrossBakes"] = all(a[k] == b[k] for k in keys)
    return out
