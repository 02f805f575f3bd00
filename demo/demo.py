"""`make demo`: a real canary deployment with automatic rollback, on a local
AWS, seen from the clients.

1. Starts the local AWS (moto with Step Functions execution, cargo-lambda
   serving the five functions, the DNS authority and eight unbound caches,
   tasks that serve HTTP; see local/README.md) and turns alarm evaluation on
   (every 10 s, as CloudWatch evaluates 10-s alarms).
2. Builds the seed article's world: Cloud Map slots backend-blue /
   backend-green (A TTL 1 s), an EXTERNAL ECS service whose blue task set
   serves v1, the weighted CNAME backend.ns-1 (blue 100 / green 0, TTL 1 s),
   and the gate alarm backend-5xx on the 5xx *the clients received*
   (namespace Clients, Errors5xx Sum ≥ 5 in one 10-s period).
3. Starts client tasks that call backend.ns-1 through the resolvers, eight
   opening a connection per request and eight keeping connections alive (at
   most 5 s), 6 requests/s each, each putting its request and 5xx counts to
   CloudWatch every 10 s; prints requests/s and errors per version every 2 s.
4. Deploys v2 (good) with the CLI: 10 % -> 50 % -> 100 %, bake 20 s.
5. Makes v3 answer 5xx on 30 % of its requests and deploys it: nobody sets
   an alarm; the clients' errors make backend-5xx fire, alarm-rollback moves
   traffic back, the execution ends RolledBackOnAlarm.
6. Writes a chart of each version's share of client requests, prints the
   figures taken from the clients' request log, and checks every outcome.
   Exit 0 only when each is what it should be; everything started is stopped.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from canarytest import world
from localaws import LocalAws, clientlog

REPO = pathlib.Path(__file__).resolve().parents[1]

CLI = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "ecs-dns-canary"
CNAME_TTL = 1
CLOUDMAP_TTL = 1
# Each unbound cache hands every client behind it the same weighted answer
# for a TTL window: the independent draws are the cache fills, about
# RESOLVERS / (TTL + 0.5) a second. Eight caches give a 10 % step ~100
# draws in a 20-s bake (with three, a 10 % step often got none at all).
RESOLVERS = 8
ALARM = world.CLIENT_ALARM
# The engine refuses a bake shorter than the alarm's detection time (it
# could fire after the last gate): Period × (EvaluationPeriods + 1) + 10 s
# evaluation + the clients' 10-s publish interval (alarms.metricDelaySeconds
# in the deployment file): 40 s for the 5xx alarm. The demo checks that the
# alarm fired within it of v3's first request.
BAKE_SECONDS = ALARM.bake_floor()
# v3's bake is longer than the alarm needs: the alarm fires while step 1 bakes.
V3_BAKE_SECONDS = BAKE_SECONDS + 5
V3_ERROR_RATE = 0.3
CLIENTS_PER_MODE = 8  # one of each mode per resolver
CLIENT_RATE = 6.0  # requests/s per client: ~96/s in all
MAX_CONNECTION_AGE = 5.0
CLIENTS_DURATION = 300.0  # bound; stopped as soon as the story is over
LIVE_EVERY = 2.0
# Bounds on "alarm -> 99 % of new requests on the old version" and on the
# last request the canary answers, per mode: the rollback writes the weights
# (measured 0.35-0.67 s after the alarm on this loaded machine: ROLLBACK),
# unbound serves a cached answer for up to TTL + 1 s (whole seconds), then
# a new-connection client resolves again; a keep-alive client may have
# opened its connection from that cache just before it expired and keeps
# it for MAX_CONNECTION_AGE. Margin: 1 s (the 1-s window of time_to_safety,
# scheduling on a 2-core machine). Route 53 propagation is 0 here.
ROLLBACK = 1.0
MARGIN = 1.0
SAFETY_BOUND = {
    "new-connection": ROLLBACK + CNAME_TTL + 1 + MARGIN,
    "keep-alive": ROLLBACK + CNAME_TTL + 1 + MAX_CONNECTION_AGE + MARGIN,
}
failures: list[str] = []
_out = threading.Lock()


def say(msg: str = "") -> None:
    with _out:
        print(msg, flush=True)


def heading(msg: str) -> None:
    say()
    say(f"=== {msg}")


def check(ok: bool, what: str) -> None:
    say(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


def describe(w: world.World, svc: world.Service) -> str:
    weights = world.weights(w, svc)
    sets = world.task_sets(w, svc)
    parts = [f"weights blue {weights.get('blue')} / green {weights.get('green')}"]
    for ts in sets:
        image = w.c("ecs").describe_task_definition(taskDefinition=ts["taskDefinition"])["taskDefinition"][
            "containerDefinitions"
        ][0]["image"]
        slot = world.slot_of(svc, ts)
        healthy = len(world.instances(w, svc, slot)) if slot else 0
        parts.append(f"{slot}: {ts['status']} {image.rsplit('/', 1)[-1]} ({healthy} instances)")
    return "; ".join(parts)


class Live:
    """Prints one line every LIVE_EVERY seconds: per version the requests/s,
    5xx and other errors the clients saw in the last interval."""

    def __init__(self, fleet: world.ClientFleet) -> None:
        self.fleet = fleet
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(LIVE_EVERY):
            now = time.time() - 0.3  # requests still in flight end within ms
            say("  live  " + clientlog.live_line(self.fleet.recent(now - LIVE_EVERY - 1), now, window=LIVE_EVERY))


def deploy(env: dict, deployment_file: pathlib.Path, image: str, name: str, *extra: str) -> int:
    """The CLI's `deploy --watch --plain`, its lines printed as they come."""
    proc = subprocess.Popen(
        [str(CLI), "deploy", "--file", str(deployment_file), "--image", image, "--name", name, "--watch", "--plain",
         "--poll-ms", "500", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        say("  cli   " + line.rstrip())
    return proc.wait(timeout=600)


def weight_events(changes: list[dict], svc: world.Service, since_seq: int, new_slot: str, label: str) -> list[tuple[float, dict]]:
    """(time, weights) of each change the functions made to svc's record
    after `since_seq`."""
    out = []
    for c in changes:
        if c["seq"] <= since_seq or c["caller"] != "function":
            continue
        moved = world.weight_changes([c], svc)
        if moved:
            out.append((c["time"], moved[0]))
    return out


def deletions(aws: LocalAws, since: float) -> list[float]:
    return [c["time"] for c in aws.calls(service="ecs", operation="DeleteTaskSet", caller="function")
            if c["status"] < 300 and c["time"] >= since]


def main() -> int:
    if not CLI.exists():
        say(f"missing {CLI}: run `cargo build --workspace --bins` (make demo does)")
        return 2
    heading(f"Starting the local AWS (moto + cargo-lambda + DNS + unbound x{RESOLVERS})")
    t0 = time.time()
    with LocalAws(resolvers=RESOLVERS) as aws:
        say(f"  AWS endpoint {aws.endpoint_url}, Lambda endpoint {aws.lambda_url} ({time.time() - t0:.1f}s)")
        say(f"  resolvers {', '.join(f'{h}:{p}' for h, p in aws.resolvers())}, tasks serve on port {aws.task_port()}")
        env = {**os.environ, **aws.env(), "CANARY_STATE_MACHINE_ARN": world.STATE_MACHINE_NAME}
        aws.alarm_evaluation(enabled=True, tick_seconds=10)

        heading("Building the world of the seed article")
        w = world.build(aws, ttl=CNAME_TTL, cloudmap_ttl=CLOUDMAP_TTL)
        svc = w.services["backend"]
        say(f"  cluster {svc.cluster}, service {svc.name} (EXTERNAL), record {svc.record_name} (TTL {CNAME_TTL}s)")
        say(f"  slots {svc.blue_dns} / {svc.green_dns} (TTL {CLOUDMAP_TTL}s)")
        say(f"  gate alarm {svc.alarms[0]}: Clients/Errors5xx Sum >= {ALARM.threshold:g} in {ALARM.datapoints} of "
            f"{ALARM.evaluation_periods} x {ALARM.period}s (Service={svc.name}); {svc.alarms[1]}: mean latency")
        say(f"  {describe(w, svc)}")

        run_dir = aws.run_dir / "demo"
        run_dir.mkdir(parents=True, exist_ok=True)
        deployment_file = run_dir / "backend.json"
        request = svc.request("unused:v0", steps=(10, 50, 100), bake=BAKE_SECONDS, ready_poll=1)
        request.pop("image")
        # The engine's own drain (CNAME TTL + Cloud Map TTL + 10 s) and its
        # bake check: nothing here shortens either.
        request["strategy"].pop("drainSeconds", None)
        request["strategy"].pop("allowShortBake", None)
        # The keep-alive clients' connection age: the plan's rollback bound
        # then states when they are off a rolled-back canary.
        request["strategy"]["clientMaxConnectionAgeSeconds"] = int(MAX_CONNECTION_AGE)
        deployment_file.write_text(json.dumps(request, indent=2))
        say(f"  deployment file: {deployment_file}")

        heading(f"Clients: {CLIENTS_PER_MODE} new-connection + {CLIENTS_PER_MODE} keep-alive (max age "
                f"{MAX_CONNECTION_AGE:g}s), {CLIENT_RATE:g} requests/s each, over {RESOLVERS} resolvers")
        fleet = world.ClientFleet(aws, svc, run_dir / "clients", per_mode=CLIENTS_PER_MODE, rate=CLIENT_RATE,
                                  duration=CLIENTS_DURATION, max_connection_age=MAX_CONNECTION_AGE, seed=11)
        fleet.start()
        live = Live(fleet)
        live.thread.start()
        events: list[tuple[float, str]] = []
        try:
            time.sleep(4)

            # ------------------------------------------------------------ v2
            heading(f"Deploying v2 (good): canary 10% -> 50% -> 100%, {BAKE_SECONDS}s bake each")
            seq0 = (aws.route53_changes() or [{"seq": 0}])[-1]["seq"]
            v2_start = time.time()
            rc = deploy(env, deployment_file, svc.image("v2"), "backend-v2-demo")
            v2_end = time.time()
            check(rc == 0, f"v2 deployment succeeded (exit {rc})")
            weights = world.weights(w, svc)
            check(weights == {"blue": 0, "green": 100}, f"all traffic on green: {weights}")
            sets = world.task_sets(w, svc)
            check(len(sets) == 1 and sets[0]["status"] == "PRIMARY" and world.slot_of(svc, sets[0]) == "green",
                  "one task set left: v2, PRIMARY, in green (v1 deleted after the drain)")
            changes = aws.route53_changes()
            v2_steps = weight_events(changes, svc, seq0, "green", "v2")
            for t, wts in v2_steps:
                events.append((t, f"v2 {wts.get('green')}%"))
            v1_deleted = deletions(aws, v2_start)
            events += [(t, "v1 deleted") for t in v1_deleted]
            seq1 = changes[-1]["seq"] if changes else 0
            time.sleep(3)

            # ------------------------------------------------------------ v3
            aws.set_image_behaviour(":v3", error_rate=V3_ERROR_RATE)
            heading(f"Deploying v3: it answers 5xx on {V3_ERROR_RATE:.0%} of its requests; bake {V3_BAKE_SECONDS}s")
            say("  nobody sets an alarm: the clients' own 5xx metrics must make backend-5xx fire")
            v3_start = time.time()
            rc = deploy(env, deployment_file, svc.image("v3"), "backend-v3-demo", "--bake", str(V3_BAKE_SECONDS))
            v3_end = time.time()
            time.sleep(4)  # clients keep going: the rollback must reach them
        finally:
            live.stop.set()
            fleet.stop()
        records = fleet.records()
        log_path = run_dir / "clients.jsonl"
        fleet.write_log(log_path)

        check(rc == 1, f"v3 deployment failed as it should (exit {rc})")
        arn = w.state_machine_arn.replace(":stateMachine:", ":execution:") + ":backend-v3-demo"
        desc = aws.client("stepfunctions").describe_execution(executionArn=arn)
        check(desc.get("error") == "RolledBackOnAlarm", f"its error is RolledBackOnAlarm ({desc.get('error')})")
        check(svc.alarms[0] in (desc.get("cause") or ""), "its cause names backend-5xx")
        weights = world.weights(w, svc)
        check(weights == {"blue": 0, "green": 100}, f"all traffic back on green (v2): {weights}")
        sets = world.task_sets(w, svc)
        check(len(sets) == 1 and sets[0]["status"] == "PRIMARY" and world.slot_of(svc, sets[0]) == "green",
              "v3's task set deleted, v2 still PRIMARY")
        set_by_hand = [c for c in aws.calls(service="cloudwatch", operation="SetAlarmState")]
        check(not set_by_hand, f"no SetAlarmState call ({len(set_by_hand)}): the alarm fired from the clients' metrics")
        alarm_at = [t for t in world.alarm_changes(aws, svc.alarms[0]) if v3_start <= t <= v3_end]
        check(bool(alarm_at), f"{svc.alarms[0]} went to ALARM during the v3 deployment")
        changes = aws.route53_changes()
        v3_moves = weight_events(changes, svc, seq1, "blue", "v3")
        for t, wts in v3_moves:
            events.append((t, f"v3 {wts.get('blue')}%" if wts.get("blue") else "rolled back"))
        rolled_back_at = next((t for t, wts in v3_moves if wts.get("blue") == 0), None)
        check(rolled_back_at is not None, "a weight change put blue (v3) back to 0")
        v3_deleted = deletions(aws, v3_start)
        events += [(t, "v3 deleted") for t in v3_deleted]
        if alarm_at:
            events.append((alarm_at[0], f"{svc.alarms[0]} ALARM"))
        events.sort()
        say(f"  {describe(w, svc)}  (v3 run took {v3_end - v3_start:.1f}s)")

        # ------------------------------------------------------------ what clients saw
        heading("What the clients saw (from their request log)")
        say(f"  request log {log_path} ({len(records)} requests)")
        s = clientlog.summary(records)
        for v, d in s["versions"].items():
            say(f"  {v}: {d['requests']} requests, {d['errors5xx']} 5xx, errors {d['errors'] or 0}, "
                f"latency p50 {d['latencyMsP50']} ms p99 {d['latencyMsP99']} ms")
        figures: dict = {"cnameTtl": CNAME_TTL, "cloudMapTtl": CLOUDMAP_TTL, "resolvers": RESOLVERS,
                         "requests": len(records)}

        say(f"  share of client requests on the canary per step (from the weight change + {CNAME_TTL + 1}s, the "
            f"cached answers' life, to the next change):")
        figures["shares"] = []
        steps = [(t, "v2", "green", wts) for t, wts in v2_steps] + [(t, "v3", "blue", wts) for t, wts in v3_moves]
        for i, (t, ver, slot, wts) in enumerate(steps):
            weight = wts.get(slot, 0)
            if weight in (0, 100):
                continue
            nxt = steps[i + 1][0] if i + 1 < len(steps) else min(v3_end, t + 600)
            # Answers cached before the change live up to TTL + 1 s more.
            t = t + CNAME_TTL + 1
            # One weighted draw per resolver cache and TTL window (unbound
            # serves an answer TTL to TTL + 1 s); keep-alive clients resolve
            # through the same caches, so they add no independent draw.
            draws = int(RESOLVERS * (nxt - t) / (CNAME_TTL + 0.5))
            sh = clientlog.share_in_interval(records, ver, t, nxt, expected=weight / 100, draws=max(1, draws))
            per_mode = {m: clientlog.share_in_interval([r for r in records if r["mode"] == m], ver, t, nxt)["share"]
                        for m in ("new-connection", "keep-alive")}
            say(f"    {ver} at weight {weight:3d}% for {nxt - t:4.1f}s: {100 * (sh['share'] or 0):5.1f}% of "
                f"{sh['n']} requests (new-connection {100 * (per_mode['new-connection'] or 0):.1f}%, keep-alive "
                f"{100 * (per_mode['keep-alive'] or 0):.1f}%); ±{100 * (sh['margin'] or 0):.0f} points for ~{sh['draws']} "
                f"independent draws -> {'within' if sh['within'] else 'outside'}")
            figures["shares"].append({"version": ver, "weight": weight, "seconds": round(nxt - t, 1),
                                      "share": sh["share"], "n": sh["n"], "draws": sh["draws"], "within": sh["within"],
                                      "byMode": per_mode})

        if rolled_back_at is not None:
            br = clientlog.blast_radius(records, "v3", rolled_back_at)
            after = sum(1 for r in records if r.get("version") == "v3" and r["t"] > rolled_back_at)
            first = br["first"]
            say(f"  blast radius: v3 served {br['bad']} 5xx of {br['served']} requests from its first request to the "
                f"rollback ({rolled_back_at - first:.1f}s)" if first else "  blast radius: v3 served no request")
            say(f"    and {after} requests after the rollback (cached answers, open connections)")
            figures["blastRadius"] = {**br, "servedAfterRollback": after}

        if alarm_at and rolled_back_at is not None:
            detection = alarm_at[0] - (first or v3_start)
            say(f"  alarm {svc.alarms[0]} -> ALARM at +{detection:.1f}s after v3's first "
                f"request; weights back {rolled_back_at - alarm_at[0]:.2f}s after the alarm")
            figures["detection"] = round(detection, 2)
            # The bake floor is honest: the alarm fired within the detection
            # time the engine counts (and refuses a shorter bake with).
            check(first is not None and detection <= BAKE_SECONDS,
                  f"the alarm fired {detection:.1f}s after v3's first request, within the bake floor "
                  f"{BAKE_SECONDS}s (Period x (EvaluationPeriods + 1) + 10 s + metric delay "
                  f"{ALARM.metric_delay}s)")
            figures["alarmToWeightsBack"] = round(rolled_back_at - alarm_at[0], 3)
            figures["timeToSafety"] = {}
            for mode, bound in SAFETY_BOUND.items():
                mine = [r for r in records if r["mode"] == mode]
                tts = clientlog.time_to_safety(mine, alarm_at[0], {"v2"})
                # The 99 % figure is ~0 when no cache happened to hold v3 at
                # the alarm (a 10 % step is lumpy): the last request v3
                # answered says how long clients could still reach it.
                last_v3 = max((r["t"] for r in mine if r.get("version") == "v3"), default=None)
                before = clientlog.share_in_interval(mine, "v3", alarm_at[0] - 5, alarm_at[0])["share"]
                last = None if last_v3 is None else round(last_v3 - alarm_at[0], 2)
                figures["timeToSafety"][mode] = {"ninetyNine": tts, "lastV3Request": last, "v3ShareBefore": before}
                say(f"  time to safety ({mode}): 99% of new requests on v2 {tts if tts is None else round(tts, 2)}s "
                    f"after the alarm; last request answered by v3 started at {last:+}s (v3 had "
                    f"{100 * (before or 0):.0f}% of the 5 s before the alarm; bound {bound:g}s)")
                check(tts is not None and tts <= bound and (last is None or last <= bound),
                      f"rollback reached {mode} clients within {bound:g}s")

        failed_v2 = clientlog.failed_requests(records, v2_start, v2_end + 2)
        failed_v3 = clientlog.failed_requests(records, v3_start, v3_end + 4, bad_versions={"v3"})
        stops = world.task_stops(aws)
        check(len(stops) == 4, f"v1's and v3's tasks stopped ({len(stops)} tasks)")
        after_stop = clientlog.requests_after_stop(records, stops)
        figures["failedDuringV2"] = len(failed_v2)
        figures["failedDuringV3ExceptV3s5xx"] = len(failed_v3)
        figures["requestsAfterStop"] = len(after_stop)
        check(not failed_v2, f"failed requests during v2's deployment: {len(failed_v2)} "
              f"{[(r['error'], r['status'], r['version']) for r in failed_v2[:5]]}")
        check(not failed_v3, f"failed requests during v3's deployment other than v3's own 5xx: {len(failed_v3)} "
              f"{[(r['error'], r['status'], r['version']) for r in failed_v3[:5]]}")
        check(not after_stop, f"requests answered by a task after it stopped: {len(after_stop)}")
        check(not fleet.put_errors(), f"clients' PutMetricData errors: {fleet.put_errors()[:3]}")

        chart = clientlog.chart(records, run_dir / "clients.png", events=events, bucket=1.0,
                                title="backend.ns-1: client requests by version (v2 canary, v3 rolled back on its 5xx)")
        (run_dir / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
        say(f"  chart: {chart}")
        say(f"  figures: {run_dir / 'figures.json'}")

        heading("History of both executions")
        for name in ("backend-v2-demo", "backend-v3-demo"):
            say(f"--- {name}")
            subprocess.run([str(CLI), "history", name], env=env, timeout=60)

    heading("Result")
    if failures:
        for f in failures:
            say(f"  FAILED: {f}")
        return 1
    say("  demo passed: v2 promoted through 10/50/100 % with no failed client request; v3's 5xx made its alarm")
    say("  fire, traffic went back and reached the clients within the stated bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
