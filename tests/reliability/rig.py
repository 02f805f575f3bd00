"""Test rig of the reliability suite: local AWS "lanes", fresh services,
executions, and the invariants every run is checked against.

A lane is one `LocalAws` (moto + cargo lambda watch) with its own run
directory. Fault rules and the Route 53 rate limit apply to a whole lane, so
cases that inject faults run one after another inside a lane, and lanes run
side by side. Every case deploys a service of its own (built through
`canarytest.world`), so cases never see each other's task sets or records.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarytest import contract, world
from canarytest.invariants import norm, route53_violations
from localaws import LocalAws

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

FUNCTIONS = ("create-taskset", "set-weight", "check-health", "delete-taskset", "alarm-rollback", "repair")
IMAGE = f"{world.IMAGE_REPO}:v2"

# The Fail states' error names, kept in one place with the definition's checks.
FAIL_ERRORS = contract.FAIL_ERRORS


def lane_count() -> int:
    """How many lanes run fault matrix cases side by side (RELIABILITY_LANES, default 4)."""
    return max(1, int(os.environ.get("RELIABILITY_LANES", "4")))


# ------------------------------------------------------------------ lanes


class Lane:
    """One local AWS and the services built in it."""

    _numbers = itertools.count(1)

    def __init__(self, name: str | None = None, concurrency: int = 4) -> None:
        self.name = name or f"lane{next(self._numbers)}"
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"reliability-{self.name}-"))
        self.aws = LocalAws(run_dir=self.run_dir, concurrency=concurrency)
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._sfn: Any = None
        self.state_machine_arn = ""
        self._call_tail = 0

    def start(self) -> Lane:
        self.aws.start()
        world.apply_realism(self.aws)  # issue 12: real AWS behaviours on in every test
        # Issue 15's repair function would act on executions these tests end
        # on purpose (RollbackFailed, CleanupFailed) after their checks, in the
        # next test's call log: status change events are delivered only in
        # the repair scenario's runs (scenarios.py), switched on around its stop.
        self.aws.sfn_status_events(False)
        return self

    def exact(self, timing: bool) -> None:
        """timing=False: no delays (reproducible call counts, for calls.json
        and the fault matrix's nth-call faults); True: the realistic delays."""
        world.apply_realism(self.aws, timing=timing)

    def close(self, keep_logs: bool = False) -> None:
        """Stops the local AWS (every process it started) and removes its run
        directory unless `keep_logs`."""
        try:
            self.aws.close()
        finally:
            if not keep_logs:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    def sfn(self) -> Any:
        if self._sfn is None:
            self._sfn = self.aws.client("stepfunctions")
        return self._sfn

    def last_call_seq(self) -> int:
        """The seq of the newest entry of the call log (0 when empty); reads
        only what was logged since the last look."""
        calls = self.aws.calls(since=self._call_tail)
        if calls:
            self._call_tail = calls[-1]["seq"]
        return self._call_tail

    def services(self, n: int, prefix: str = "s", ttl: int = 10, replicas: int = 2) -> list[tuple[world.World, world.Service]]:
        """`n` fresh deployable services (one world.build call: its own VPC,
        namespace, zone); names are unique in the lane."""
        with self._lock:
            names = [f"{prefix}{next(self._names)}" for _ in range(n)]
        w = world.build(self.aws, services=tuple(names), replicas=replicas, ttl=ttl)
        self.state_machine_arn = w.state_machine_arn
        return [(w, w.services[name]) for name in names]

    def service(self, prefix: str = "s", **kw: Any) -> tuple[world.World, world.Service]:
        return self.services(1, prefix, **kw)[0]

    # -------------------------------------------------------- direct invokes

    def invoke(self, function: str, payload: Any, timeout: float = 300) -> tuple[int, Any]:
        """Invokes a function over cargo-lambda's Invoke API: (HTTP status,
        JSON answer). cargo-lambda answers a function error with 500 and
        `{"errorType", "errorMessage"}`."""
        url = f"{self.aws.lambda_url}/2015-03-31/functions/{function}/invocations"
        data = json.dumps(payload).encode()
        req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body.decode(errors="replace")

    def warm(self, copies: int = 1) -> None:
        """Starts each function once (cargo-lambda starts them lazily; a
        first call pays for `cargo run`). `copies` concurrent calls start
        that many instances of each."""
        with ThreadPoolExecutor(len(FUNCTIONS) * copies) as pool:
            # A cold target dir makes the first call build the function: be patient.
            list(pool.map(lambda f: self.invoke(f, {"warm": True}, timeout=900), [f for f in FUNCTIONS for _ in range(copies)]))


# ------------------------------------------------------------------ executions


def execution_name(tag: str) -> str:
    """A unique execution name (the deployment id), at most 80 characters."""
    return f"{tag[:60]}-{uuid.uuid4().hex[:8]}"


def start(lane: Lane, request: dict[str, Any] | str, name: str) -> str:
    body = request if isinstance(request, str) else json.dumps(request)
    return lane.sfn().start_execution(stateMachineArn=lane.state_machine_arn, name=name, input=body)["executionArn"]


def wait(lane: Lane, arn: str, timeout: float = 600, poll: float = 0.25) -> dict[str, Any]:
    sfn = lane.sfn()
    deadline = time.time() + timeout
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        if time.time() > deadline:
            raise TimeoutError(f"execution {arn} still RUNNING after {timeout:.0f} s")
        time.sleep(poll)


def history(lane: Lane, arn: str) -> list[dict[str, Any]]:
    sfn = lane.sfn()
    events: list[dict[str, Any]] = []
    token = None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        out = sfn.get_execution_history(**kw)
        events += out["events"]
        token = out.get("nextToken")
        if not token:
            break
    events.sort(key=lambda e: e["id"])
    return events


def states_entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e.get("stateEnteredEventDetails")]


def tasks_scheduled(events: list[dict[str, Any]]) -> list[str]:
    """Function names of every Task (lambda invoke) the execution scheduled."""
    out = []
    for e in events:
        d = e.get("taskScheduledEventDetails")
        if d and (d.get("resourceType") == "events" or '"Entries"' in str(d.get("parameters", ""))):
            continue  # a deployment event (events:putEvents), not a function
        if d:
            try:
                out.append(json.loads(d["parameters"]).get("FunctionName", "?"))
            except (ValueError, KeyError):
                out.append("?")
    return out


def wait_for_bake(lane: Lane, arn: str, timeout: float = 120) -> bool:
    """Blocks until the execution waits for a bake's task token (True) or
    ends (False)."""
    deadline = time.time() + timeout
    sfn = lane.sfn()
    while time.time() < deadline:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(e["type"] == "TaskSubmitted" for e in events):
            return True
        if any(e["type"] in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut") for e in events):
            return False
        time.sleep(0.1)
    return False


def wait_repair(lane: Lane, arn: str, timeout: float = 300) -> dict[str, Any]:
    """The completed delivery of `arn`'s status change event to repair
    (after Lambda's retries, when the function failed)."""
    deadline = time.time() + timeout
    while True:
        for d in lane.aws.sfn_status_events()["deliveries"]:
            if d["executionArn"] == arn and not d.get("redelivery") and (d.get("completedAt") or d.get("result") == "dropped"):
                return d
        if time.time() > deadline:
            raise TimeoutError(f"no completed repair delivery for {arn} after {timeout:.0f} s")
        time.sleep(0.2)


def repair_record(lane: Lane, arn: str) -> dict[str, Any] | None:
    """The repair's record of execution `arn` (the input of the execution of
    `<sm>-repairs` named like it), or None."""
    head, name = arn.rsplit(":", 1)
    record_arn = head + "-repairs:" + name
    try:
        d = lane.sfn().describe_execution(executionArn=record_arn)
    except lane.sfn().exceptions.ExecutionDoesNotExist:
        return None
    return json.loads(d.get("input") or "null")


def cause_parts(desc: dict[str, Any]) -> tuple[str | None, str]:
    return desc.get("error"), desc.get("cause") or ""


# ------------------------------------------------------------------ observations


def weights(w: world.World, svc: world.Service) -> dict[str, int]:
    return world.weights(w, svc)


def slot_health(w: world.World, svc: world.Service, slot: str, external_id: str | None = None) -> tuple[int, int]:
    """(healthy, total) Cloud Map instances of a slot (of one task set when
    `external_id` is given)."""
    sd = w.c("servicediscovery")
    arn = svc.blue_arn if slot == "blue" else svc.green_arn
    sid = arn.rsplit("/", 1)[-1]
    inst = sd.list_instances(ServiceId=sid)["Instances"]
    if external_id is not None:
        inst = [i for i in inst if i.get("Attributes", {}).get("ECS_TASK_SET_EXTERNAL_ID") == external_id]
    if not inst:
        return 0, 0
    status = sd.get_instances_health_status(ServiceId=sid).get("Status", {})
    healthy = sum(1 for i in inst if status.get(i["Id"], "HEALTHY") == "HEALTHY")
    return healthy, len(inst)


def route53_changes_for(lane: Lane, svc: world.Service, since: int = 0) -> list[dict[str, Any]]:
    """Every recorded Route 53 change (after change seq `since`) that touched
    the service's weighted record."""
    out = []
    for ch in lane.aws.route53_changes(since=since):
        # The seed's own records (world.build, made while its tasks start) are setup, not a deployment's.
        if ch.get("caller") == "harness":
            continue
        if norm(svc.record_name) in {norm(c.get("name", "")) for c in ch.get("changes", [])}:
            out.append(ch)
    return out


def change_violations(changes: list[dict[str, Any]], svc: world.Service) -> list[str]:
    """The Route 53 invariants (canarytest.invariants) over every change of
    the service's weighted record."""
    return route53_violations(changes, svc.record_name)


@dataclass
class Observed:
    weights: dict[str, int]
    task_sets: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        ts = ", ".join(f"{t['externalId']}:{t['status']}@{t['slot']}" for t in self.task_sets)
        return f"weights {self.weights}; task sets [{ts}]; {len(self.changes)} Route 53 changes"


def observe(lane: Lane, w: world.World, svc: world.Service, since_change: int = 0) -> Observed:
    sets = []
    for t in world.task_sets(w, svc):
        slot = world.slot_of(svc, t)
        healthy, total = slot_health(w, svc, slot, t.get("externalId")) if slot else (0, 0)
        sets.append(
            {
                "id": t["id"],
                "arn": t["taskSetArn"],
                "externalId": t.get("externalId"),
                "status": t["status"],
                "slot": slot,
                "healthy": healthy,
                "instances": total,
            }
        )
    return Observed(weights(w, svc), sets, route53_changes_for(lane, svc, since_change))


def check_invariants(
    lane: Lane,
    w: world.World,
    svc: world.Service,
    desc: dict[str, Any],
    since_change: int = 0,
    live_slot: str = "blue",
) -> tuple[list[str], Observed]:
    """Checks a finished execution. Returns (violations, observed state).

    - Every Route 53 change this service's record got: never all-zero, never
      weight on a slot without healthy instances.
    - A success: the new slot has 100 %, its task set is PRIMARY and healthy,
      it is the only task set.
    - A failure: the error is one of the Fail states' names, and (except
      RollbackFailed, whose cause must say where traffic may be) one slot has
      100 % served by a healthy PRIMARY task set. A task set left behind
      counts as an orphan unless the Fail cause names it (CleanupFailed,
      OldTaskSetNotDeleted tell the operator to delete it).
    """
    obs = observe(lane, w, svc, since_change)
    v = change_violations(obs.changes, svc)
    status = desc["status"]
    error, cause = cause_parts(desc)
    new_slot = "green" if live_slot == "blue" else "blue"

    if status == "SUCCEEDED":
        serving = new_slot
    elif status == "FAILED":
        if error not in FAIL_ERRORS:
            v.append(f"execution failed with {error!r}, not one of the Fail states' names")
        serving = new_slot if error == "OldTaskSetNotDeleted" else live_slot
    else:
        v.append(f"execution ended {status}")
        serving = live_slot

    if error == "RollbackFailed":
        # Traffic may be split: the cause must say what to do.
        for word in ("may still be split", "by hand", live_slot):
            if word not in cause:
                v.append(f"RollbackFailed cause does not say {word!r}: {cause}")
    else:
        want = {serving: 100, ("green" if serving == "blue" else "blue"): 0}
        if obs.weights != want:
            v.append(f"weights {obs.weights}, expected {want}")
        primaries = [t for t in obs.task_sets if t["status"] == "PRIMARY"]
        if len(primaries) != 1:
            v.append(f"{len(primaries)} PRIMARY task sets: {obs.task_sets}")
        else:
            p = primaries[0]
            if p["slot"] != serving:
                v.append(f"PRIMARY task set {p['externalId']} is in {p['slot']}, traffic is on {serving}")
            if p["healthy"] == 0 or p["healthy"] < p["instances"]:
                v.append(f"PRIMARY task set {p['externalId']} has {p['healthy']} of {p['instances']} instances healthy")
        for t in obs.task_sets:
            if t["status"] == "PRIMARY":
                continue
            if t["id"] in cause and error in ("CleanupFailed", "OldTaskSetNotDeleted"):
                continue  # left behind, named in the cause with what to do
            v.append(f"orphan task set {t['externalId']} ({t['id']}, {t['status']}, {t['slot']})")
    obs.violations = v
    return v, obs


def traffic_violations(w: world.World, svc: world.Service, obs: Observed) -> list[str]:
    """Traffic is safe now: some weight, and weight only on a slot whose
    Cloud Map service has healthy instances."""
    v = []
    if sum(obs.weights.values()) == 0:
        v.append(f"all-zero weights {obs.weights}")
    for slot, weight in obs.weights.items():
        if weight > 0 and slot_health(w, svc, slot)[0] == 0:
            v.append(f"weight {weight} on {slot}, which has no healthy instance")
    return v


def check_repair(lane: Lane, w: world.World, svc: world.Service, arn: str, outcome: str, since_change: int = 0) -> tuple[list[str], Observed]:
    """The invariants after a stopped execution's repair: every Route 53
    change (never all-zero, never weight on an unhealthy slot), traffic safe
    now, and when the repair says it restored: the old slot (blue) has
    100 %, one PRIMARY healthy task set there, and no task set of the
    execution (externalId = its name) is left."""
    obs = observe(lane, w, svc, since_change)
    v = change_violations(obs.changes, svc) + traffic_violations(w, svc, obs)
    if outcome in ("restored", "unrecorded restored"):
        if obs.weights != {"blue": 100, "green": 0}:
            v.append(f"repair says restored, weights {obs.weights}")
        name = arn.rsplit(":", 1)[-1]
        left = [t for t in obs.task_sets if t["externalId"] == name]
        if left:
            v.append(f"repair says restored, the execution's task set is still there: {left}")
        primaries = [t for t in obs.task_sets if t["status"] == "PRIMARY"]
        if len(primaries) != 1 or primaries[0]["slot"] != "blue" or primaries[0]["healthy"] < max(1, primaries[0]["instances"]):
            v.append(f"repair says restored, PRIMARY task sets {primaries}")
        if len(obs.task_sets) != 1:
            v.append(f"repair says restored, task sets {obs.task_sets}")
    obs.violations = v
    return v, obs


# ------------------------------------------------------------------ snapshots


READ_PREFIXES = ("Describe", "List", "Get")


def snapshot(aws: LocalAws, scope: list[world.Service] | None = None, extra_services: tuple[str, ...] = ()) -> dict[str, Any]:
    """The local AWS state a refused deployment must not change: the ECS
    services with their task sets, every task definition, every record of
    every hosted zone, the Cloud Map instances with their health, every alarm.
    `scope`: only these services' ECS service and Cloud Map slots (the rest
    of the world is proven untouched by the call log: see read_only_calls)."""
    ecs = aws.client("ecs")
    r53 = aws.client("route53")
    sd = aws.client("servicediscovery")
    cw = aws.client("cloudwatch")
    snap: dict[str, Any] = {"services": {}, "taskDefinitions": [], "records": {}, "instances": {}, "alarms": {}}

    def add_services(cluster: str, names: list[str]) -> None:
        for i in range(0, len(names), 10):
            for s in ecs.describe_services(cluster=cluster, services=names[i : i + 10])["services"]:
                snap["services"][s["serviceArn"]] = {
                    "status": s["status"],
                    "taskSets": sorted(
                        (t["taskSetArn"], t["status"], t.get("taskDefinition"), json.dumps(t.get("scale"), sort_keys=True))
                        for t in s.get("taskSets", [])
                    ),
                }

    if scope is None:
        for cluster in ecs.list_clusters()["clusterArns"]:
            add_services(cluster, _paged(ecs.list_services, "serviceArns", cluster=cluster))
        sd_ids = [s["Id"] for s in _paged(sd.list_services, "Services", token_key="NextToken", req_token="NextToken")]
    else:
        by_cluster: dict[str, list[str]] = {}
        for svc in scope:
            by_cluster.setdefault(svc.cluster, []).append(svc.name)
        for cluster, names in by_cluster.items():
            add_services(cluster, names + list(extra_services))
        sd_ids = [arn.rsplit("/", 1)[-1] for svc in scope for arn in (svc.blue_arn, svc.green_arn)]
    snap["taskDefinitions"] = _paged(ecs.list_task_definitions, "taskDefinitionArns")
    for zone in r53.list_hosted_zones()["HostedZones"]:
        rrs = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        snap["records"][zone["Id"]] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rrs)
    for sid in sd_ids:
        inst = sd.list_instances(ServiceId=sid)["Instances"]
        health = sd.get_instances_health_status(ServiceId=sid).get("Status", {}) if inst else {}
        snap["instances"][sid] = sorted((i["Id"], health.get(i["Id"])) for i in inst)
    for a in _paged(cw.describe_alarms, "MetricAlarms", token_key="NextToken", req_token="NextToken"):
        snap["alarms"][a["AlarmName"]] = (a["StateValue"], a.get("StateReason"), a.get("Threshold"), str(a.get("StateUpdatedTimestamp")))
    return snap


def _paged(op: Any, key: str, token_key: str = "nextToken", req_token: str = "nextToken", **kw: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = op(**kw, **({req_token: token} if token else {}))
        out += page.get(key, [])
        token = page.get(token_key)
        if not token:
            return out


def mutating_calls(aws: LocalAws, since: int) -> list[str]:
    """Every call the functions made after call seq `since` that is not a
    read (Describe*, List*, Get*)."""
    return [
        f"{c['service']}:{c['operation']}"
        for c in aws.calls(caller="function", since=since)
        if not c["operation"].startswith(READ_PREFIXES)
    ]


def snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in before:
        a, b = before[key], after[key]
        if a == b:
            continue
        if isinstance(a, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    out.append(f"{key}[{k}]: {a.get(k)} -> {b.get(k)}")
        else:
            out.append(f"{key}: {sorted(set(b) - set(a))} added, {sorted(set(a) - set(b))} removed")
    return out
