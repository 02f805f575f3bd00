"""`make demo`: a real canary deployment with automatic rollback, on a local AWS.

1. Starts the local AWS (moto with Step Functions execution, cargo-lambda
   serving the five functions, see local/README.md).
2. Builds the seed article's world: Cloud Map slots backend-blue / backend-green
   in namespace ns-2, an EXTERNAL ECS service whose blue task set serves v1,
   the private zone ns-1 with the weighted CNAME backend.ns-1 (blue 100 /
   green 0), two CloudWatch alarms.
3. Deploys v2 with the CLI: steps 10 % -> 50 % -> 100 %, a short bake each.
4. Deploys v3 and sets an alarm to ALARM during the second step's bake: the
   alarm-rollback function moves traffic back at once and the execution takes
   its rollback path.
5. Prints both executions' history and checks every outcome. Exit 0 only when
   each is what it should be; everything started is stopped.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import world  # noqa: E402
from localaws import LocalAws  # noqa: E402

CLI = REPO / "target" / "debug" / "ecs-dns-canary"
BAKE_SECONDS = 5
# Long enough that a rollback at the end of the bake would be visibly late.
V3_BAKE_SECONDS = 30
failures: list[str] = []


def say(msg: str = "") -> None:
    print(msg, flush=True)


def heading(msg: str) -> None:
    say()
    say(f"=== {msg}")


def check(ok: bool, what: str) -> None:
    say(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


def cli(env: dict, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], env=env, **kw)


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


def alarm_during_step(aws: LocalAws, w: world.World, name: str, step: int, alarm: str, fired: dict) -> None:
    """Sets `alarm` to ALARM once execution `name` bakes its `step`-th step."""
    sfn = aws.client("stepfunctions")
    arn = w.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        except sfn.exceptions.ExecutionDoesNotExist:
            time.sleep(0.2)
            continue
        # A bake is waiting once its task was submitted (the token is out).
        if sum(1 for e in events if e["type"] == "TaskSubmitted") >= step:
            time.sleep(1.0)  # let the step bake a moment, as a real regression would
            aws.set_alarm_state(alarm, "ALARM", f"5xx rate above threshold during step {step}")
            fired["at"] = time.time()
            return
        if any(e["type"] in ("ExecutionSucceeded", "ExecutionFailed") for e in events):
            return
        time.sleep(0.2)


def main() -> int:
    if not CLI.exists():
        say(f"missing {CLI}: run `cargo build --workspace --bins` (make demo does)")
        return 2
    heading("Starting the local AWS (moto + cargo-lambda)")
    t0 = time.time()
    with LocalAws() as aws:
        say(f"  AWS endpoint {aws.endpoint_url}, Lambda endpoint {aws.lambda_url} ({time.time() - t0:.1f}s)")
        env = {**os.environ, **aws.env(), "CANARY_STATE_MACHINE_ARN": world.STATE_MACHINE_NAME}

        heading("Building the world of the seed article")
        w = world.build(aws)
        svc = w.services["backend"]
        say(f"  cluster {svc.cluster}, service {svc.name} (EXTERNAL), record {svc.record_name}")
        say(f"  slots {svc.blue_dns} / {svc.green_dns}, alarms {', '.join(svc.alarms)}")
        say(f"  {describe(w, svc)}")

        run_dir = aws.run_dir / "demo"
        run_dir.mkdir(parents=True, exist_ok=True)
        deployment_file = run_dir / "backend.json"
        request = svc.request("unused:v0", steps=(10, 50, 100), bake=BAKE_SECONDS, ready_poll=1)
        request.pop("image")
        deployment_file.write_text(json.dumps(request, indent=2))
        say(f"  deployment file: {deployment_file}")

        # ------------------------------------------------------------ v2
        heading(f"Deploying v2: canary 10% -> 50% -> 100%, {BAKE_SECONDS}s bake each")
        v2 = "backend-v2-demo"
        r = cli(env, "deploy", "--file", str(deployment_file), "--image", f"{world.IMAGE_REPO}:v2",
                "--name", v2, "--watch")
        check(r.returncode == 0, f"v2 deployment succeeded (exit {r.returncode})")
        weights = world.weights(w, svc)
        check(weights == {"blue": 0, "green": 100}, f"all traffic on green: {weights}")
        sets = world.task_sets(w, svc)
        check(
            len(sets) == 1 and sets[0]["status"] == "PRIMARY" and world.slot_of(svc, sets[0]) == "green",
            "one task set left: v2, PRIMARY, in green (v1 deleted after the drain)",
        )
        check(len(world.instances(w, svc, "blue")) == 0, "v1's Cloud Map instances are gone")
        say(f"  {describe(w, svc)}")

        # ------------------------------------------------------------ v3
        heading("Deploying v3: an alarm fires during step 2's bake")
        v3 = "backend-v3-demo"
        fired: dict = {}
        watcher = threading.Thread(
            target=alarm_during_step, args=(aws, w, v3, 2, svc.alarms[0], fired), daemon=True
        )
        watcher.start()
        started = time.time()
        r = cli(env, "deploy", "--file", str(deployment_file), "--image", f"{world.IMAGE_REPO}:v3",
                "--name", v3, "--bake", str(V3_BAKE_SECONDS), "--watch")
        ended = time.time()
        watcher.join(timeout=5)
        check(r.returncode == 1, f"v3 deployment failed as it should (exit {r.returncode})")
        desc = aws.client("stepfunctions").describe_execution(
            executionArn=w.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{v3}"
        )
        check(desc.get("error") == "RolledBackOnAlarm", f"its error is RolledBackOnAlarm ({desc.get('error')})")
        check(svc.alarms[0] in (desc.get("cause") or ""), "its cause names the alarm")
        weights = world.weights(w, svc)
        check(weights == {"blue": 0, "green": 100}, f"all traffic back on green (v2): {weights}")
        sets = world.task_sets(w, svc)
        check(
            len(sets) == 1 and sets[0]["status"] == "PRIMARY" and world.slot_of(svc, sets[0]) == "green",
            "v3's task set deleted, v2 still PRIMARY",
        )
        if fired:
            check(ended - fired["at"] < V3_BAKE_SECONDS / 2, f"rolled back {ended - fired['at']:.1f}s after the alarm (bake was {V3_BAKE_SECONDS}s)")
        back = [c for c in aws.route53_changes() if c.get("caller") == "function"]
        if fired and back:
            last = back[-1]
            say(f"  weights back {last['time'] - fired['at']:.3f}s after the alarm was set")
        say(f"  {describe(w, svc)}  (v3 run took {ended - started:.1f}s)")
        aws.set_alarm_state(svc.alarms[0], "OK", "recovered")

        # ------------------------------------------------------------ history
        heading("History of both executions")
        for name in (v2, v3):
            say(f"--- {name}")
            cli(env, "history", name)
        heading("Executions")
        cli(env, "list")

    heading("Result")
    if failures:
        for f in failures:
            say(f"  FAILED: {f}")
        return 1
    say("  demo passed: v2 promoted through 10/50/100 %, v3 rolled back automatically on its alarm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
