"""`ecs-dns-canary deploy --from NAME` (issue 15, item 5): deploys again the
task definition an earlier execution deployed, read from its history, here
as a blue/green switch back (`--steps 100 --bake 0`)."""

from __future__ import annotations

import json
import subprocess

from canarytest import world as W
from canarytest.e2e import CLI, cli_env, service


def test_deploy_from_switches_back_to_the_earlier_task_definition(aws, world, tmp_path):
    assert CLI.exists(), f"{CLI} is missing: run `cargo build --workspace --bins`"
    env = cli_env(aws)
    svc = service(world)
    request = svc.request("unused", steps=(100,), bake=0, drain=0, unsafeShortDrain=True)
    del request["image"]
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(request))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)

    watch = ["--watch", "--plain", "--poll-ms", "200"]
    v2, v3, back = f"{svc.name}-v2", f"{svc.name}-v3", f"{svc.name}-back"
    for name, tag in ((v2, "v2"), (v3, "v3")):
        p = cli("deploy", "-f", str(deployment), "--image", svc.image(tag), "--name", name, *watch)
        assert p.returncode == 0, p.stdout + p.stderr
    v3_td = W.primary(world, svc)["taskDefinition"]  # v3 is live now

    # Redeploy what v2 deployed: no file, its input and task definition come from its history.
    dry = cli("deploy", "--from", v2, "--steps", "100", "--bake", "0", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    sent = json.loads(dry.stdout)["input"]
    assert "image" not in sent and sent["target"] == request["target"], sent
    assert sent["strategy"]["steps"] == [100] and sent["strategy"]["bakeSeconds"] == 0, sent
    v2_registered = sent["taskDefinition"]
    assert v2_registered != v3_td, (v2_registered, v3_td)

    p = cli("deploy", "--from", v2, "--steps", "100", "--bake", "0", "--name", back, *watch)
    assert p.returncode == 0, p.stdout + p.stderr
    live = W.primary(world, svc)
    assert live["taskDefinition"] == v2_registered, live
    assert [t["externalId"] for t in W.task_sets(world, svc)] == [back]
    td = world.c("ecs").describe_task_definition(taskDefinition=v2_registered)["taskDefinition"]
    assert [c["image"] for c in td["containerDefinitions"] if c["name"] == svc.container] == [svc.image("v2")]

    # An execution that deployed nothing is refused before anything starts (exit 3).
    refused = cli("deploy", "--from", "no-such-execution", "--steps", "100")
    assert refused.returncode == 4, refused.stderr  # not found: a Step Functions error
    bad = request | {"image": svc.image("v4"), "target": {**request["target"], "cluster": "nope"}}
    arn = W.start(world, bad, f"{svc.name}-refused")
    assert W.wait_end(world, arn)["status"] == "FAILED"
    nothing = cli("deploy", "--from", f"{svc.name}-refused", "--steps", "100")
    assert nothing.returncode == 3, nothing.stdout + nothing.stderr
    assert "deployed no task definition" in nothing.stderr, nothing.stderr
