"""The engineers' CLI against the local AWS: `deploy --watch` exit codes for a
successful and a rolled-back deployment, then `history` and `list --json`."""

from __future__ import annotations

import json
import subprocess

import pytest

from canarytest import world as W
from canarytest.e2e import CLI, assert_invariants, cli_env, service


@pytest.fixture
def cli(aws):
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `cargo build --workspace --bins` (make test-e2e does)")
    env = cli_env(aws)

    def call(*args: str, timeout: float = 120.0, background: bool = False):
        cmd = [str(CLI), *args]
        if background:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

    return call


def execution_arn(name: str) -> str:
    return f"arn:aws:states:{W.REGION}:{W.ACCOUNT}:execution:{W.STATE_MACHINE_NAME}:{name}"


def test_cli_deploy_watch_history_list(aws, world, cli, tmp_path):
    svc = service(world)
    request = svc.request("unused", steps=(10, 50, 100), bake=1)
    del request["image"]
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(request, indent=2))
    ok_name, bad_name = f"{svc.name}-v2", f"{svc.name}-v3"
    watch = ["--watch", "--plain", "--poll-ms", "200"]

    # 1. A successful deployment: exit 0.
    ok = cli("deploy", "--file", str(deployment), "--image", f"{W.IMAGE_REPO}:v2", "--name", ok_name, *watch)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCEEDED" in ok.stdout, ok.stdout
    assert "step 1/3: weights blue 90 / green 10" in ok.stdout, ok.stdout
    assert W.weights(world, svc) == {"blue": 0, "green": 100}

    # 2. The next one (green -> blue) rolled back by an alarm in step 2: exit 1.
    proc = cli("deploy", "--file", str(deployment), "--image", f"{W.IMAGE_REPO}:v3", "--name", bad_name, "--bake", "2",
               *watch, background=True)
    try:
        W.wait_baking(world, execution_arn(bad_name), 2)
        aws.set_alarm_state(svc.alarms[0], "ALARM", "errors in v3")
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    assert "FAILED" in out and "RolledBackOnAlarm" in out, out
    assert "rolled back: weights blue 0 / green 100" in out, out
    assert W.weights(world, svc) == {"blue": 0, "green": 100}
    sets = W.task_sets(world, svc)
    assert [(t["externalId"], t["status"], W.slot_of(svc, t)) for t in sets] == [(ok_name, "PRIMARY", "green")]
    assert_invariants(aws, svc)

    # 3. history: the states of each, with the Fail cause.
    h_ok = cli("history", ok_name)
    assert h_ok.returncode == 0, h_ok.stderr
    assert h_ok.stdout.startswith(f"{ok_name}  SUCCEEDED"), h_ok.stdout
    for state in ("Create task set in idle slot", "Shift traffic", "Bake", "Check alarms", "Promote new task set",
                  "Delete old task set", "Deployment complete"):
        assert state in h_ok.stdout, (state, h_ok.stdout)
    h_bad = cli("history", bad_name)
    assert h_bad.returncode == 0, h_bad.stderr
    assert h_bad.stdout.startswith(f"{bad_name}  FAILED"), h_bad.stdout
    for text in ("Roll back traffic", "Delete new task set", "Deployment failed", "RolledBackOnAlarm",
                 svc.alarms[0], "step 2 of 3"):
        assert text in h_bad.stdout, (text, h_bad.stdout)

    h_json = cli("--json", "history", bad_name)
    assert h_json.returncode == 0, h_json.stderr
    doc = json.loads(h_json.stdout)
    assert (doc["name"], doc["status"], doc["error"]) == (bad_name, "FAILED", "RolledBackOnAlarm")
    visited = [s["state"] for s in doc["states"]]
    assert visited.count("Shift traffic") == 2 and visited[-1] == "Deployment failed", visited

    # 4. list --json: both, newest first, with their status.
    listed = cli("--json", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows[ok_name]["status"] == "SUCCEEDED" and rows[bad_name]["status"] == "FAILED", rows
    assert rows[bad_name]["executionArn"] == execution_arn(bad_name)
    assert [r["name"] for r in json.loads(listed.stdout)][:2] == [bad_name, ok_name]
    assert all(rows[n]["durationSeconds"] > 0 for n in (ok_name, bad_name))
