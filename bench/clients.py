"""What clients see during a deployment (issue 11 item 7, issue 13 item 5),
measured from the clients' request log of the local world: real DNS answers
through unbound caches, real HTTP requests to the tasks that serve, alarms
that fire from the errors the clients put with PutMetricData, and the real
functions under `cargo lambda watch` (debug builds).

Never from Route 53's stored weights: the Route 53 change log gives only the
instants (when a change was made, when the local DNS started answering it),
the alarm history the alarm's state change; every share, time to safety,
blast radius and failed request is counted in the clients' log
(`localaws.clientlog`).

Scenarios (each one service of the world, one deployment per repetition):
- `share`: a successful canary (steps 10/25/50/100) with CNAME TTL 1 s seen
  through many unbound caches (one cache = one weighted draw per TTL), new-
  connection clients on every cache and keep-alive clients beside them;
- `tts-<ttl>`: a bad canary at 50 % (30 % 5xx), both client modes in the same
  deployment, the alarm on `Clients/Errors5xx` Sum by Service rolls back;
  CNAME TTL 1, 5, 30, 60 s, in a world without and one with realistic
  Route 53 propagation (each change visible within uniform(0, 60) s);
- `blast-<step>-<period>`: a bad canary at 10/25/50 % with a 10 s or 30 s
  alarm period; 5xx it served from its first request to the rollback.
Every scenario's log also gives what the deployment cost clients: failed
requests (connection errors, 5xx from a version that is not bad).

The scenarios of one phase run concurrently (independent services, and two
local AWSs for the two propagation settings); `fidelity` in the JSON holds
what shows whether that distorted timing: asked vs achieved request rates,
client latency, and how far each new-connection time to safety exceeds the
time it cannot beat (weights back + TTL).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import math
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from common import REPO, RESULTS_DIR, summary

from canarytest import world
from localaws import LocalAws, clientlog
from localaws.clients import Clients, ClientsConfig, MetricsPublisher

# Route 53 FAQ: changes "generally propagate to all Route 53 name servers
# within 60 seconds" -- the bound issue 13's reported rollback time uses.
PROPAGATION_BOUND_S = 60.0
BAD_ERROR_RATE = 0.3
ALARM_THRESHOLD = 3.0
LOG_DIR = RESULTS_DIR / "clients"
# Per DNS attempt (2 attempts): glibc's resolver waits 5 s; the clients'
# default 1 s made a busy local authority (load 17 on 2 cores) look like
# client failures.
DNS_TIMEOUT_S = 2.0
_TAGS = itertools.count(1)
_PROFILE = ["full"]


@dataclass
class Profile:
    reps: int
    tts_ttls: list[int]
    propagation: list[bool]
    blast_steps: list[int]
    blast_periods: list[int]
    share_steps: list[int]
    share_bake: int
    resolvers: int  # unbound caches of the world without propagation (the share needs many)
    resolvers_prop: int
    budget_s: float  # no repetition starts when the last one would not end within it
    share_clients_per_resolver: int = 2
    share_rate: float = 2.0
    tts_clients: int = 4  # per mode
    tts_rate: float = 4.0
    blast_clients: int = 2  # per mode
    blast_rate: float = 4.0
    max_connection_age: float = 30.0
    warm: bool = True  # warm the functions before the world is built (off in the smoke: start-up time)
    tts_bad_later: bool = True  # see Scenario.bad_later (off in the smoke: time)
    share_watches_alarm: bool = True  # off in the smoke: a 6-s bake is then allowed (BakeTooShort)
    one_phase: bool = False  # every scenario of a world at once (the smoke: 3 small ones)


PROFILES = {
    # The share's bake (40 s) is the bake floor of its 10-s alarm: 10 x (1 + 1)
    # + 10 s evaluation + 10 s metric delay (BakeTooShort below it).
    "full": Profile(3, [1, 5, 30, 60], [False, True], [10, 25, 50], [10, 30], [10, 25, 50, 100], 40, 24, 4, 28 * 60),
    "quick": Profile(1, [1, 5, 30, 60], [False, True], [10, 25, 50], [10, 30], [10, 25, 50, 100], 40, 24, 4, 12 * 60),
    # bench/test_bench_smoke.py: every figure once, in under 2 minutes.
    # The smoke's share deployment watches no alarm: the engine refuses a bake
    # shorter than an alarm's detection (BakeTooShort: 40 s for a 10-s period).
    "smoke": Profile(1, [1], [False], [50], [10], [50, 100], 6, 4, 4, 150, share_watches_alarm=False, one_phase=True,
                     share_clients_per_resolver=2, tts_clients=2,
                     blast_clients=2, max_connection_age=5.0, warm=False, tts_bad_later=False),
}


@dataclass
class Scenario:
    kind: str  # share | tts | blast
    service: str
    ttl: int
    steps: list[int]
    bake: int
    bad: bool
    period: int = 10
    modes: dict[str, tuple[int, float]] = field(default_factory=dict)  # mode -> (clients, rate per client)
    resolvers: int = 0  # how many of the world's caches its clients use (0: all)
    propagation: bool = False
    # The canary turns bad only once every keep-alive client has reconnected
    # at least once since the first shift reached DNS (its connection age
    # + the TTL), so keep-alive clients are on the canary in its weight's
    # share when the alarm fires, as they would be in a longer bake.
    bad_later: bool = False
    max_connection_age: float = 30.0
    watch_alarm: bool = True  # the deployment watches the scenario's alarm (off only in the smoke's share)


def scenarios(p: Profile) -> dict[str, list[Scenario]]:
    """The scenarios of each world (`noprop`, `prop`), by service name."""
    tts_modes = {"new-connection": (p.tts_clients, p.tts_rate), "keep-alive": (p.tts_clients, p.tts_rate)}
    out: dict[str, list[Scenario]] = {"noprop": [], "prop": []}
    for prop in p.propagation:
        key = "prop" if prop else "noprop"
        for ttl in p.tts_ttls:
            out[key].append(Scenario("tts", f"tts{ttl}", ttl, [50, 100], 600, True, 10, dict(tts_modes), 4, prop, p.tts_bad_later, p.max_connection_age))
    out["noprop"].append(
        Scenario(
            "share", "share", 1, list(p.share_steps), p.share_bake, False, 10,
            {"new-connection": (p.share_clients_per_resolver * p.resolvers, p.share_rate), "keep-alive": (4, 4.0)},
            max_connection_age=p.max_connection_age, watch_alarm=p.share_watches_alarm,
        )
    )
    blast_modes = {"new-connection": (p.blast_clients, p.blast_rate), "keep-alive": (p.blast_clients, p.blast_rate)}
    for step in p.blast_steps:
        for period in p.blast_periods:
            out["noprop"].append(Scenario("blast", f"bl{step}p{period}", 5, [step, 100], 600, True, period, dict(blast_modes), 4,
                                          max_connection_age=p.max_connection_age))
    return out


# ------------------------------------------------------------------ world


@contextlib.contextmanager
def client_world(name: str, scs: list[Scenario], resolvers: int, propagation: bool, warm: bool = True) -> Iterator[tuple[Any, Any]]:
    """A local AWS (functions: cargo lambda watch, debug builds) with one
    service per scenario, alarm evaluation on at CloudWatch's 10 s tick,
    and, when `propagation`, the realistic DNS delays."""
    run_dir = RESULTS_DIR / "run" / (f"clients-{name}" if _PROFILE[0] == "full" else f"clients-{_PROFILE[0]}-{name}")
    with LocalAws(run_dir=run_dir, resolvers=resolvers, warm=warm) as aws:
        aws.alarm_evaluation(enabled=True, tick_seconds=10)
        w = world.build(aws, services=tuple(s.service for s in scs))
        if propagation:
            # Only once the records exist: a name queried before its CREATE is
            # visible is NXDOMAIN, cached by unbound for the SOA's negative TTL
            # (900 s), which is what the first full run measured.
            aws.route53_propagation(0, spread=PROPAGATION_BOUND_S)
            aws.cloudmap_dns_delay(5)
        yield aws, w


def set_ttl(aws: Any, svc: Any, ttl: int) -> None:
    """Both weighted records get `ttl`, weights and targets unchanged (bench
    setting; world.py builds every service with one TTL)."""
    r53 = aws.client("route53")
    rrs = r53.list_resource_record_sets(HostedZoneId=svc.zone_id)["ResourceRecordSets"]
    mine = [r for r in rrs if r.get("SetIdentifier") and r["Name"].rstrip(".") == svc.record_name]
    changes = []
    for r in mine:
        if r.get("TTL") == ttl:
            continue
        r = dict(r)
        r["TTL"] = ttl
        changes.append({"Action": "UPSERT", "ResourceRecordSet": r})
    if changes:
        r53.change_resource_record_sets(HostedZoneId=svc.zone_id, ChangeBatch={"Changes": changes})


def put_alarm(aws: Any, name: str, service: str, period: int) -> None:
    """The alarm a team would put on what its clients see: Clients/Errors5xx,
    Sum over one period, dimension Service only."""
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="Clients",
        MetricName="Errors5xx",
        Dimensions=[{"Name": "Service", "Value": service}],
        Statistic="Sum",
        Period=period,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=ALARM_THRESHOLD,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )


def alarm_state(cw: Any, name: str) -> str | None:
    a = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return a[0]["StateValue"] if a else None


def alarm_changes(cw: Any, name: str) -> list[tuple[float, str]]:
    """(epoch s, new state) of every state change in the alarm's history, oldest first."""
    items = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")["AlarmHistoryItems"]
    out = []
    for i in items:
        new = json.loads(i["HistoryData"])["newState"]["stateValue"]
        out.append((i["Timestamp"].timestamp(), new))
    return sorted(out)


# ------------------------------------------------------------------ clients


class ClientGroup:
    """Several `Clients` runs on one name: each mode's clients spread over
    the resolvers (one `Clients` per resolver and mode), every one putting
    its metrics under the scenario's service."""

    def __init__(self, aws: Any, name: str, service: str, modes: dict[str, tuple[int, float]], resolvers: list[tuple[str, int]],
                 duration: float, max_connection_age: float) -> None:
        self.runs: list[tuple[int, Clients]] = []
        env = aws.env()
        endpoint = env["AWS_ENDPOINT_URL"]
        port = aws.task_port()
        self.asked_rps = 0.0
        for mode, (n, rate) in modes.items():
            self.asked_rps += n * rate
            per: dict[int, int] = Counter(i % len(resolvers) for i in range(n))
            for ri, k in sorted(per.items()):
                cfg = ClientsConfig(
                    name=name, resolver=resolvers[ri], port=port, clients=k, mode=mode, rate=rate,
                    duration=duration, max_requests=2_000_000, max_connection_age=max_connection_age,
                    dns_timeout=DNS_TIMEOUT_S,
                )
                pub = MetricsPublisher(service, endpoint, region=env["AWS_REGION"], access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"])
                self.runs.append((ri, Clients(cfg, metrics=pub, recent_max=1_000_000)))

    def start(self) -> ClientGroup:
        self.started = time.time()
        for _, c in self.runs:
            c.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        for _, c in self.runs:
            c._stop.set()  # all at once, then join each
        errors = []
        for _, c in self.runs:
            try:
                c.join()
            except Exception as e:  # noqa: BLE001 - reported, the records stay usable
                errors.append(repr(e))
        self.stopped = time.time()
        if errors:
            raise RuntimeError(f"clients failed: {errors}")
        recs = []
        for idx, (ri, c) in enumerate(self.runs):
            for r in c.recent():
                r = dict(r)
                r["resolver"] = ri
                r["client"] = f"g{idx}-{r['client']}"
                recs.append(r)
        recs.sort(key=lambda r: r["t"])
        return recs


# ------------------------------------------------------------------ one deployment


def _weights_of(change: dict[str, Any], record: str) -> dict[str, int] | None:
    for name, recs in (change.get("records") or {}).items():
        if name.rstrip(".").lower() == record.lower():
            return {r["setIdentifier"]: r["weight"] for r in recs if r.get("setIdentifier")}
    return None


def run_one(aws: Any, w: Any, sc: Scenario, rep: int, live_version: str, hard_s: float = 480.0) -> dict[str, Any]:
    """One deployment of `sc` with its clients; returns the figures of this run."""
    svc = w.services[sc.service]
    cw = aws.client("cloudwatch")
    sfn = aws.client("stepfunctions")
    set_ttl(aws, svc, sc.ttl)
    alarm = f"{sc.service}-clients-5xx-r{rep}"
    put_alarm(aws, alarm, svc.name, sc.period)
    tag = f"{sc.service}-{next(_TAGS)}"
    image = f"{world.IMAGE_REPO}:{tag}"
    if sc.bad:
        aws.set_image_behaviour(image, error_rate=0.0 if sc.bad_later else BAD_ERROR_RATE)
    resolvers = aws.resolvers()
    if sc.resolvers:
        resolvers = resolvers[: sc.resolvers]
    group = ClientGroup(aws, svc.record_name, svc.name, sc.modes, resolvers, hard_s, sc.max_connection_age).start()
    t_start = time.time()
    deadline = t_start + hard_s - 10
    out: dict[str, Any] = {"scenario": sc.service, "rep": rep, "ttl": sc.ttl, "steps": sc.steps, "period": sc.period,
                           "propagation": sc.propagation, "newVersion": tag, "oldVersion": live_version, "alarm": alarm}
    arn = None
    status = None
    try:
        # Warm-up: the caches are filled and the alarm has judged at least one
        # period of the clients' own data (OK) before the deployment starts.
        # (A fresh alarm with missing = notBreaching is OK at its first tick
        # without any data; the warm-up is what makes it the clients' data.)
        warmup = sc.period + 10 if sc.watch_alarm else 5
        while (sc.watch_alarm and alarm_state(cw, alarm) != "OK") or time.time() < t_start + warmup:
            if time.time() > t_start + 2 * sc.period + 40:
                raise RuntimeError(f"{alarm} not OK {2 * sc.period + 40} s after the clients started")
            time.sleep(1)
        before = world.weights(w, svc)
        live_slot = max(before, key=lambda k: before[k])
        new_slot = next(k for k in before if k != live_slot)
        r53_seq = max((c["seq"] for c in aws.route53_changes()), default=0)
        call_seq = max((c["seq"] for c in aws.calls()), default=0)
        request = {
            "target": svc.target(),
            "image": image,
            "strategy": {"steps": sc.steps, "bakeSeconds": sc.bake, "readyTimeoutSeconds": 120, "readyPollSeconds": 1},
            # The clients put their metrics every 10 s (the bake floor's
            # metric delay; the engine's default is the CloudWatch agent's 60 s).
            "alarms": {"names": [alarm] if sc.watch_alarm else [], "metricDelaySeconds": 10},
        }
        t_deploy = time.time()
        arn = sfn.start_execution(stateMachineArn=w.state_machine_arn, name=f"{tag}-r{rep}", input=json.dumps(request))["executionArn"]
        status = "RUNNING"
        alarm_seen = None
        bad_at = None if sc.bad_later else t_deploy
        while time.time() < deadline:
            d = sfn.describe_execution(executionArn=arn)
            status = d["status"]
            if status != "RUNNING":
                break
            if sc.bad and bad_at is None:
                first = next((c for c in aws.route53_changes(since=r53_seq) if c.get("caller") == "function"
                              and (_weights_of(c, svc.record_name) or {}).get(new_slot)), None)
                if first and time.time() >= (first.get("visibleAt") or first["time"]) + sc.ttl + sc.max_connection_age + 1:
                    aws.set_image_behaviour(image, error_rate=BAD_ERROR_RATE)
                    bad_at = time.time()
            if sc.bad and alarm_seen is None and alarm_state(cw, alarm) == "ALARM":
                alarm_seen = time.time()
            time.sleep(0.5)
        t_exec_end = time.time()
        if status == "RUNNING":
            sfn.stop_execution(executionArn=arn, error="Benchmark", cause="bounded: still running at the scenario's deadline")
        # Clients keep going a little after the end (the deletions are then 3 s old).
        time.sleep(3.0)
    finally:
        recs = group.stop()
        if arn is not None and status == "RUNNING":
            with contextlib.suppress(Exception):
                sfn.stop_execution(executionArn=arn, error="Benchmark", cause="cleanup")
    t_end = group.stopped
    log_dir = LOG_DIR if _PROFILE[0] == "full" else LOG_DIR / _PROFILE[0]  # a smoke run keeps the full run's logs
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{'prop' if sc.propagation else 'noprop'}-{sc.service}-r{rep}.jsonl"
    with open(log_path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    out["log"] = str(log_path.relative_to(REPO))
    out["status"] = status
    out["execution"] = arn
    out["badAtS"] = round(bad_at - t_deploy, 2) if sc.bad and bad_at else None
    out["deployedAt"] = t_deploy
    out["executionEndS"] = round(t_exec_end - t_deploy, 2)
    changes = [c for c in aws.route53_changes(since=r53_seq) if c.get("caller") == "function"]
    wchanges = []
    for c in changes:
        ws = _weights_of(c, svc.record_name)
        if ws is not None:
            wchanges.append({"time": c["time"], "visibleAt": c.get("visibleAt") or c["time"], "weights": ws,
                             "ttl": next((x.get("ttl") for x in c.get("changes", []) if x.get("ttl")), None)})
    out["weightChanges"] = [{"atS": round(c["time"] - t_deploy, 3), "visibleS": round(c["visibleAt"] - t_deploy, 3), "newWeight": c["weights"].get(new_slot)} for c in wchanges]
    deletes = [c["time"] for c in aws.calls(service="ecs", operation="DeleteTaskSet", since=call_seq) if c.get("caller") == "function"]
    out["deleteTaskSetAtS"] = [round(t - t_deploy, 2) for t in deletes]
    # ---- fidelity: asked vs achieved, latency
    dur = max(1e-6, t_end - group.started)
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        by_mode[r["mode"]].append(r)
    out["fidelity"] = {
        "askedRps": round(group.asked_rps, 1),
        "achievedRps": round(len(recs) / dur, 1),
        "latencyMs": {m: _pcts([r["latencyMs"] for r in rs if r.get("latencyMs") is not None]) for m, rs in by_mode.items()},
    }
    out["requests"] = len(recs)
    # ---- cost: failed requests over the whole deployment
    bad_versions = {tag} if sc.bad else set()
    failed = clientlog.failed_requests(recs, t_deploy, t_end + 1, bad_versions)
    out["failed"] = _failures(failed, deletes, t_deploy)
    out["failedByMode"] = {m: len([r for r in failed if r["mode"] == m]) for m in by_mode}
    # The same count over the warm-up (clients running, no deployment yet): the rig's own failures.
    out["failedBeforeDeployment"] = _failures(clientlog.failed_requests(recs, group.started, t_deploy, bad_versions), deletes, t_deploy)["count"]
    # ---- per kind
    if sc.kind == "share":
        out["share"] = _share(recs, wchanges, new_slot, tag, sc.ttl)
    if sc.bad:
        hist = alarm_changes(cw, alarm)
        to_alarm = [t for t, s in hist if s == "ALARM" and t >= t_deploy]
        alarm_t = to_alarm[0] if to_alarm else None
        out["alarmAtS"] = round(alarm_t - t_deploy, 3) if alarm_t else None
        back = next((c for c in wchanges if alarm_t and c["time"] >= alarm_t - 1 and c["weights"].get(new_slot) == 0
                     and c["weights"].get(live_slot) == 100), None)
        first_new = min((r["t"] for r in recs if r.get("version") == tag and r.get("status") is not None), default=None)
        out["canaryFirstRequestS"] = round(first_new - t_deploy, 3) if first_new else None
        if alarm_t and back:
            out["weightsBackS"] = round(back["time"] - alarm_t, 3)
            out["weightsBackVisibleS"] = round(back["visibleAt"] - alarm_t, 3)
            out["tts"] = {}
            for m, rs in by_mode.items():
                v = clientlog.time_to_safety(rs, alarm_t, {live_version}, threshold=0.99, window=1.0)
                on_new_after = sum(1 for r in rs if r["t"] >= alarm_t and r.get("version") == tag)
                served = [r for r in rs if (bad_at or t_deploy) <= r["t"] < alarm_t and r.get("status") is not None]
                out["tts"][m] = {"seconds": None if v is None else round(v, 3), "requestsOnNewAfterAlarm": on_new_after,
                                 "lastOnNewS": _last_on(rs, tag, alarm_t),
                                 # how much of this mode's traffic the canary had when the alarm fired
                                 "shareOnNewBeforeAlarm": round(sum(r.get("version") == tag for r in served) / len(served), 3) if served else None}
            measured_insync = back["visibleAt"] - back["time"]
            out["bound"] = {
                "documentedS": sc.ttl + PROPAGATION_BOUND_S,  # TTL + Route 53's documented 60 s
                "measuredInsyncS": round(sc.ttl + measured_insync, 3),  # TTL + this change's own INSYNC time
                "ttl": sc.ttl,
                "insyncS": round(measured_insync, 3),
            }
            # What no client can beat: weights visible in DNS + the cached TTL.
            nc = out["tts"].get("new-connection", {}).get("seconds")
            if nc is not None:
                out["fidelity"]["ttsExcessS"] = round(nc - (out["weightsBackVisibleS"] + sc.ttl), 3)
            out["blast"] = clientlog.blast_radius(recs, tag, back["time"])
            out["blast"]["afterWeightsBack"] = sum(1 for r in recs if r.get("version") == tag and r["t"] > back["time"] and (r.get("status") or 0) >= 500)
            out["blast"]["detectionS"] = round(alarm_t - first_new, 3) if first_new else None
        else:
            out["error"] = f"alarm at {alarm_t}, weights back {back is not None}: no rollback measured"
    return out


def _binaries() -> dict[str, str]:
    import datetime
    import os

    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug"
    out = {}
    for f in ("create-taskset", "set-weight", "check-health", "delete-taskset", "alarm-rollback"):
        with contextlib.suppress(OSError):
            out[f] = datetime.datetime.fromtimestamp((target / f).stat().st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
    return out


def _last_on(rs: list[dict[str, Any]], version: str, since: float) -> float | None:
    ts = [r["t"] for r in rs if r["t"] >= since and r.get("version") == version]
    return round(max(ts) - since, 3) if ts else None


def _pcts(vals: list[float]) -> dict[str, Any]:
    if not vals:
        return {"n": 0}
    vals = sorted(vals)
    return {"n": len(vals), "p50": round(vals[len(vals) // 2], 1), "p99": round(vals[min(len(vals) - 1, int(len(vals) * 0.99))], 1)}


def _failures(failed: list[dict[str, Any]], deletes: list[float], t0: float) -> dict[str, Any]:
    """Failed requests: how many, of which kind, in which mode, on a reused
    connection or not, around which DeleteTaskSet, and the first details."""
    kinds = Counter((r.get("error") or f"http {r.get('status')}") for r in failed)
    modes = Counter(r["mode"] for r in failed)
    near: Counter[str] = Counter()
    for r in failed:
        d = min((r["t"] - t for t in deletes), key=abs, default=None)
        near["within 5 s of a DeleteTaskSet" if d is not None and -5 <= d <= 5 else "elsewhere"] += 1
    return {
        "count": len(failed),
        "notDns": sum(1 for r in failed if r.get("error") != "dns"),
        "dns": sum(1 for r in failed if r.get("error") == "dns"),
        "byKind": dict(kinds),
        "byMode": dict(modes),
        "reused": sum(1 for r in failed if r.get("reused")),
        "nearDelete": dict(near),
        "atS": [round(r["t"] - t0, 2) for r in failed[:20]],
        "details": sorted({str(r.get("detail") or r.get("status")) for r in failed})[:5],
    }


def _share(recs: list[dict[str, Any]], wchanges: list[dict[str, Any]], new_slot: str, version: str, ttl: int) -> list[dict[str, Any]]:
    """Per step: the new version's share of the new-connection requests that
    started once every cache could have refreshed (change visible + TTL + 1 s)
    and before the next change was visible; draws = distinct (cache, TTL
    window) pairs with answered requests (unbound expires at whole seconds,
    so with TTL 1 one pair is one cache fill). `pure`: the share of those
    pairs answered by one version only (1.0: the cache answered all its
    clients alike, so the requests are not independent draws)."""
    nc = [r for r in recs if r["mode"] == "new-connection"]
    out = []
    for i, c in enumerate(wchanges):
        w = c["weights"].get(new_slot)
        if w is None:
            continue
        start = c["visibleAt"] + ttl + 1
        end = wchanges[i + 1]["visibleAt"] if i + 1 < len(wchanges) else max((r["t"] for r in nc), default=start)
        if end - start < 2:
            continue
        pairs: dict[tuple[int, int], set[str]] = defaultdict(set)
        for r in nc:
            if start <= r["t"] < end and r.get("status") is not None and r.get("version"):
                pairs[(r["resolver"], math.floor(r["t"] / ttl))].add(r["version"])
        draws = len(pairs)
        s = clientlog.share_in_interval(nc, version, start, end, expected=w / 100, draws=draws or None)
        s["weight"] = w
        s["seconds"] = round(end - start, 1)
        s["pure"] = round(sum(1 for v in pairs.values() if len(v) == 1) / draws, 3) if draws else None
        out.append(s)
    return out


# ------------------------------------------------------------------ the section


def run(profile: str = "full", reps: int | None = None, parallel: bool = True) -> dict[str, Any]:
    p = PROFILES[profile]
    _PROFILE[0] = profile
    n_reps = reps or p.reps
    plan = scenarios(p)
    started = time.time()
    doc: dict[str, Any] = {
        "profile": profile,
        "lambdaService": "cargo lambda watch (debug builds)",
        "settings": {
            "resolvers": {"noprop": p.resolvers, "prop": p.resolvers_prop},
            "badErrorRate": BAD_ERROR_RATE,
            "alarm": f"Clients/Errors5xx Sum by Service >= {ALARM_THRESHOLD:g}, 1 of 1 period, missing = notBreaching, evaluated every 10 s",
            "maxConnectionAgeS": p.max_connection_age,
            "propagation": f"uniform(0, {PROPAGATION_BOUND_S:g}) s per Route 53 change, Cloud Map DNS delay 5 s",
            "cloudMapTtl": 10,
            "taskStartSeconds": 0,
            "scenarios": {k: [s.__dict__ for s in v] for k, v in plan.items()},
            "concurrent": parallel,
        },
        # Which engine ran: cargo lambda watch runs target/debug/<function> as
        # last built in the (shared) target dir.
        "functionBinaries": _binaries(),
        "runs": [],
        "errors": [],
    }
    lock = threading.Lock()
    live: dict[tuple[str, str], str] = {}

    def one(aws: Any, w: Any, world_key: str, sc: Scenario, rep: int) -> None:
        key = (world_key, sc.service)
        live_version = live.get(key, "v1")
        try:
            r = run_one(aws, w, sc, rep, live_version)
            r["world"] = world_key
            if r.get("status") == "SUCCEEDED" and not sc.bad:
                live[key] = r["newVersion"]
            with lock:
                doc["runs"].append(r)
            print(f"bench clients: {world_key} {sc.service} rep {rep}: {r.get('status')} "
                  f"tts={r.get('tts')} failed={r['failed']['count']}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - one failed run must not hide the others
            traceback.print_exc()
            with lock:
                doc["errors"].append(f"{world_key} {sc.service} rep {rep}: {type(e).__name__}: {e}")

    def phases(world_key: str) -> list[list[Scenario]]:
        scs = plan[world_key]
        if world_key == "prop" or p.one_phase:
            return [scs]
        return [[s for s in scs if s.kind == "tts"], [s for s in scs if s.kind != "tts"]]

    def world_loop(world_key: str, aws: Any, w: Any) -> None:
        rep_times: list[float] = []
        for rep in range(n_reps):
            t_rep = time.time()
            if rep_times and t_rep + max(rep_times) > started + p.budget_s:
                with lock:
                    doc.setdefault("cut", []).append(f"{world_key}: {rep} of {n_reps} repetitions (budget {p.budget_s:.0f} s)")
                return
            for ph in phases(world_key):
                if not ph:
                    continue
                if parallel:
                    with concurrent.futures.ThreadPoolExecutor(len(ph)) as ex:
                        list(ex.map(lambda sc: one(aws, w, world_key, sc, rep), ph))
                else:
                    for sc in ph:
                        one(aws, w, world_key, sc, rep)
            rep_times.append(time.time() - t_rep)

    worlds = [k for k in ("noprop", "prop") if plan[k]]
    doc["worldReadyS"] = {}

    def world_thread(k: str) -> None:
        # Each world starts, runs its repetitions and stops in its own thread.
        try:
            with client_world(k, plan[k], p.resolvers if k == "noprop" else p.resolvers_prop, k == "prop", warm=p.warm) as (aws, w):
                doc["worldReadyS"][k] = round(time.time() - started, 1)
                world_loop(k, aws, w)
        except Exception as e:  # noqa: BLE001 - reported in the JSON
            traceback.print_exc()
            with lock:
                doc["errors"].append(f"world {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=world_thread, args=(k,), name=f"world-{k}") for k in worlds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc["wallS"] = round(time.time() - started, 1)
    doc["figures"] = figures(doc["runs"])
    return doc


# ------------------------------------------------------------------ figures over runs


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure as a distribution over the repetitions (median/min/max/n)."""
    f: dict[str, Any] = {"share": [], "tts": [], "blast": [], "cost": [], "fidelity": {}}
    share_runs = [r for r in runs if r.get("share")]
    by_w: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in share_runs:
        for s in r["share"]:
            by_w[s["weight"]].append(s)
    for wgt in sorted(by_w):
        ss = [s for s in by_w[wgt] if s.get("share") is not None]
        k, n, draws = sum(s["k"] for s in ss), sum(s["n"] for s in ss), sum(s["draws"] or 0 for s in ss)
        p = wgt / 100
        pooled = k / n if n else None
        f["share"].append({
            "weight": wgt,
            "sharePct": summary([100 * s["share"] for s in ss], 2),
            "drawsPerRun": summary([s["draws"] for s in ss], 0),
            "marginPctPerRun": summary([100 * s["margin"] for s in ss if s.get("margin") is not None], 2),
            "requestsPerRun": summary([s["n"] for s in ss], 0),
            "secondsPerRun": summary([s["seconds"] for s in ss], 1),
            "withinPerRun": sum(1 for s in ss if s.get("within")),
            "pure": summary([s["pure"] for s in ss if s.get("pure") is not None], 3),
            "pooled": {"sharePct": round(100 * pooled, 2) if pooled is not None else None, "draws": draws,
                       "marginPct": round(100 * 1.96 * math.sqrt(p * (1 - p) / draws), 2) if draws else None,
                       "within": (pooled is not None and draws > 0 and abs(pooled - p) <= 1.96 * math.sqrt(p * (1 - p) / draws))},
        })
    groups: dict[tuple[bool, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["scenario"].startswith("tts") and r.get("tts"):
            groups[(r["propagation"], r["ttl"])].append(r)
    for (prop, ttl), rs in sorted(groups.items()):
        row: dict[str, Any] = {"propagation": prop, "ttl": ttl, "n": len(rs),
               "weightsBackS": summary([r["weightsBackS"] for r in rs], 3),
               "weightsBackVisibleS": summary([r["weightsBackVisibleS"] for r in rs], 3),
               "boundDocumentedS": ttl + PROPAGATION_BOUND_S,
               "boundMeasuredInsyncS": summary([r["bound"]["measuredInsyncS"] for r in rs], 2)}
        for m in ("new-connection", "keep-alive"):
            vals = [r["tts"][m]["seconds"] for r in rs if m in r["tts"]]
            row[m] = summary([v for v in vals if v is not None], 2)
            row[m]["neverSafe"] = sum(1 for v in vals if v is None)
            row[m]["overDocumentedBound"] = sum(1 for v in vals if v is not None and v > ttl + PROPAGATION_BOUND_S)
            row[m]["overMeasuredBound"] = sum(1 for r in rs if m in r["tts"] and r["tts"][m]["seconds"] is not None
                                              and r["tts"][m]["seconds"] > r["weightsBackS"] + r["bound"]["measuredInsyncS"])
        f["tts"].append(row)
    bl: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["scenario"].startswith("bl") and r.get("blast"):
            bl[(r["steps"][0], r["period"])].append(r)
    for (step, period), rs in sorted(bl.items()):
        f["blast"].append({"step": step, "period": period, "n": len(rs),
                           "bad": summary([r["blast"]["bad"] for r in rs], 0),
                           "served": summary([r["blast"]["served"] for r in rs], 0),
                           "badAfterWeightsBack": summary([r["blast"]["afterWeightsBack"] for r in rs], 0),
                           "detectionS": summary([r["blast"]["detectionS"] for r in rs if r["blast"]["detectionS"] is not None], 1),
                           "alarmToWeightsBackS": summary([r["weightsBackS"] for r in rs], 2)})
    for label, pick in (("successful canary", lambda r: r["scenario"] == "share"),
                        ("rollback (bad canary), no propagation", lambda r: r["scenario"] != "share" and not r["propagation"]),
                        ("rollback (bad canary), realistic propagation", lambda r: r["scenario"] != "share" and r["propagation"])):
        rs = [r for r in runs if pick(r)]
        if not rs:
            continue
        kinds: Counter[str] = Counter()
        modes: Counter[str] = Counter()
        near: Counter[str] = Counter()
        for r in rs:
            kinds.update(r["failed"]["byKind"])
            modes.update(r["failed"]["byMode"])
            near.update(r["failed"]["nearDelete"])
        f["cost"].append({"deployment": label, "n": len(rs), "failed": summary([r["failed"]["count"] for r in rs], 0),
                          "failedNotDns": summary([r["failed"]["notDns"] for r in rs], 0),
                          "failedDns": summary([r["failed"]["dns"] for r in rs], 0),
                          "failedBeforeDeployment": summary([r.get("failedBeforeDeployment", 0) for r in rs], 0),
                          "requests": summary([r["requests"] for r in rs], 0),
                          "runsWithFailures": sum(1 for r in rs if r["failed"]["count"]),
                          "byKind": dict(kinds), "byMode": dict(modes), "nearDelete": dict(near),
                          "details": sorted({d for r in rs for d in r["failed"]["details"]})[:8]})
    ratios = [r["fidelity"]["achievedRps"] / r["fidelity"]["askedRps"] for r in runs if r["fidelity"]["askedRps"]]
    p99 = [v["p99"] for r in runs for v in r["fidelity"]["latencyMs"].values() if v.get("n")]
    excess = [r["fidelity"]["ttsExcessS"] for r in runs if r["fidelity"].get("ttsExcessS") is not None]
    f["fidelity"] = {"achievedOverAsked": summary(ratios, 3), "latencyP99Ms": summary(p99, 1), "ttsExcessS": summary(excess, 3)}
    return f


def table_rows(c: dict[str, Any]) -> list[tuple[str, str, tuple[str, str, str], str, Any]]:
    """(figure, subject, (median, min, max), target, met) rows for bench.py's table."""
    def st(s: dict[str, Any] | None, d: int = 1) -> tuple[str, str, str]:
        if not s or s.get("median") is None:
            return ("-", "-", "-")
        return tuple(f"{s[k]:.{d}f}" for k in ("median", "min", "max"))  # type: ignore[return-value]

    rows = []
    f = c.get("figures") or {}
    for s in f.get("share", []):
        po = s["pooled"]
        rows.append((f"client share on new, % (n={s['sharePct']['n']})",
                     f"step {s['weight']} %: {s['drawsPerRun']['median']:.0f} draws/run (±{s['marginPctPerRun']['median']} pts); "
                     f"pooled {po['sharePct']} % ±{po['marginPct']} over {po['draws']} draws; caches pure {s['pure']['median']}",
                     st(s["sharePct"], 1), f"{s['weight']} ±3", bool(po["within"]) and po["marginPct"] is not None and po["marginPct"] <= 3.0))
    for t in f.get("tts", []):
        prop = "realistic propagation" if t["propagation"] else "no propagation"
        rows.append((f"alarm -> weights back, s (n={t['n']})", f"TTL {t['ttl']} s, {prop} (visible in DNS: {st(t['weightsBackVisibleS'], 1)[0]} s)",
                     st(t["weightsBackS"], 2), "", ""))
        for m in ("new-connection", "keep-alive"):
            s = t[m]
            extra = f", never safe {s['neverSafe']}" if s.get("neverSafe") else ""
            rows.append((f"time to safety, s (n={s['n']})",
                         f"TTL {t['ttl']} s, {prop}, {m}: alarm -> 99 % on old{extra}; bound TTL+60 = {t['boundDocumentedS']:.0f}, "
                         f"TTL+INSYNC = {st(t['boundMeasuredInsyncS'], 1)[0]} (exceeded in {s['overMeasuredBound']} of {s['n']})",
                         st(s, 1), f"<= {t['boundDocumentedS']:.0f}", s["n"] > 0 and s["overDocumentedBound"] == 0 and not s.get("neverSafe")))
    for b in f.get("blast", []):
        rows.append((f"blast radius, 5xx (n={b['n']})",
                     f"step {b['step']} %, alarm period {b['period']} s: canary's first request -> weights back (served {st(b['served'], 0)[0]}, detection {st(b['detectionS'], 1)[0]} s, +{st(b['badAfterWeightsBack'], 0)[0]} after)",
                     st(b["bad"], 0), "", ""))
    for k in f.get("cost", []):
        why = f"; {k['byKind']} {k['nearDelete']}" if k["byKind"] else ""
        why += f"; during the warm-up before it: {st(k['failedBeforeDeployment'], 0)[2]} at most"
        rows.append((f"failed client requests (n={k['n']})", f"{k['deployment']} ({st(k['requests'], 0)[0]} requests/run){why}",
                     st(k["failed"], 0), "0", k["failed"]["max"] == 0))
        rows.append((f"  of which refused/reset/timeout/5xx (n={k['n']})", f"{k['deployment']}: tasks' side; the rest are DNS failures (max {st(k['failedDns'], 0)[2]})",
                     st(k["failedNotDns"], 0), "0", k["failedNotDns"]["max"] == 0))
    fid = f.get("fidelity") or {}
    if fid.get("achievedOverAsked", {}).get("n"):
        rows.append(("rig fidelity", f"achieved / asked request rate (client p99 latency median {st(fid['latencyP99Ms'], 0)[0]} ms, max {st(fid['latencyP99Ms'], 0)[2]} ms); new-connection TTS - (weights visible + TTL), s: {st(fid['ttsExcessS'], 2)}",
                     st(fid["achievedOverAsked"], 2), ">= 0.9", fid["achievedOverAsked"]["min"] >= 0.9))
    for e in c.get("errors", []):
        rows.append(("**error**", e, ("", "", ""), "", ""))
    for cut in c.get("cut", []):
        rows.append(("cut", cut, ("", "", ""), "", ""))
    return rows
