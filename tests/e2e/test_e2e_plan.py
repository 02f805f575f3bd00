"""`ecs-dns-canary plan` against the local AWS (issue 16, item 3).

(a) plan makes no mutating AWS call (the local AWS's call log: every call
    the CLI made is a Describe/List/Get), (b) for every bad input of the
    reliability catalogue (tests/reliability/test_bad_inputs.py) plan exits
    with the code of, and names, the error_type create-taskset answers for
    the same payload (the function invoked directly, as the state machine
    does), (c) a good input prints the right slots, steps and task
    definition change, and the deployment then does what plan said.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from types import SimpleNamespace

import pytest

from canarytest import bad_inputs as catalogue
from canarytest import world as W
from canarytest.e2e import CLI, cli_env, service
from localaws import lambda_client

READ_PREFIXES = ("Describe", "List", "Get")

# cli/src/plan.rs REFUSAL_EXIT_CODES (documented in cli/README.md).
EXIT_CODES = {
    "InvalidInput": 10,
    "TargetNotFound": 11,
    "TargetMisconfigured": 12,
    "DeploymentInProgress": 13,
    "TooManyTaskSets": 14,
    "BakeTooShort": 15,
    "AlarmFiring": 16,
    "Throttled": 17,
    "Retryable": 18,
    "AwsError": 19,
}


@pytest.fixture
def plan(aws, tmp_path):
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `cargo build --workspace --bins` (make test-e2e does)")
    env = cli_env(aws)
    counter = iter(range(10_000))
    tail = {"seq": 0}

    def last_seq() -> int:
        newer = aws.calls(since=tail["seq"])
        if newer:
            tail["seq"] = newer[-1]["seq"]
        return tail["seq"]

    def call(body, *args: str):
        """Runs `plan --json` on `body`; returns (exit code, document, the CLI's AWS calls)."""
        path = tmp_path / f"plan-{next(counter)}.json"
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        seq0 = last_seq()
        p = subprocess.run([str(CLI), "plan", "--file", str(path), "--json", *args], env=env,
                           capture_output=True, text=True, timeout=60)
        calls = aws.calls(caller="rust", since=seq0)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            doc = {"unparsable": p.stdout, "stderr": p.stderr}
        return p.returncode, doc, calls

    return call


def create_taskset(aws, name: str, body) -> str | None:
    """create-taskset's answer to the state machine's payload: its error_type, or None (accepted)."""
    payload = json.dumps({"deploymentId": name, "request": body}).encode()
    inv = lambda_client.invoke(aws.lambda_url, "create-taskset", payload, timeout=120)
    return inv.error_type


def writes(calls: list[dict]) -> list[str]:
    return [f"{c['service']}:{c['operation']}" for c in calls if not c["operation"].startswith(READ_PREFIXES)]


@pytest.mark.services(2 + sum(1 for b in catalogue.CATALOGUE if b.prepare))
def test_plan_gives_create_tasksets_error_for_every_bad_input_and_writes_nothing(aws, world, plan):
    svcs = list(world.services.values())
    shared, other, dedicated = svcs[0], svcs[1], iter(svcs[2:])
    ttl600 = W.build(aws, services=(f"{shared.name}-ttl",), ttl=600).services[f"{shared.name}-ttl"]
    plain = "plainsvc"
    world.c("ecs").create_service(
        cluster=world.cluster, serviceName=plain, taskDefinition=shared.name, desiredCount=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [world.subnet_id], "securityGroups": [world.sg_id]}},
    )
    lane = SimpleNamespace(aws=aws)
    extra = {"ttl600": ttl600, "plain_service": plain}
    problems, all_calls = [], []
    for bad in catalogue.CATALOGUE:
        svc = next(dedicated) if bad.prepare else shared
        ctx = catalogue.Ctx(world, svc, other, lane, extra)
        if bad.prepare:
            bad.prepare(ctx)
        body = bad.build(ctx)
        name = bad.name or f"plan-{bad.id}"[:60] + "-" + uuid.uuid4().hex[:6]
        code, doc, calls = plan(body, "--name", name)
        all_calls += calls
        got = doc.get("errorType")
        function = create_taskset(aws, name, body)
        if not (got == function == bad.expect and code == EXIT_CODES[bad.expect]):
            problems.append(f"{bad.id}: plan {got} (exit {code}), create-taskset {function}, expected {bad.expect}")
        if doc.get("wouldStart") is not False or not doc.get("refusals"):
            problems.append(f"{bad.id}: plan does not say it is refused: {str(doc)[:300]}")
        if writes(calls):
            problems.append(f"{bad.id}: plan wrote {writes(calls)}")
    assert not problems, "\n".join(problems)
    # The call log saw plan's reads: the check above could fail.
    assert any(c["operation"] == "DescribeServices" for c in all_calls), all_calls[:5]
    assert any(c["operation"] == "DescribeAlarms" for c in all_calls), all_calls[:5]


def test_plan_of_a_good_input_shows_slots_steps_and_the_change_then_the_deployment_does_it(aws, world, plan, tmp_path):
    svc = service(world)
    image = svc.image("v2")
    request = svc.request(image, steps=(10, 50, 100), bake=1, drain=0, unsafeShortDrain=True)
    code, doc, calls = plan(request)
    assert code == 0, doc
    assert doc["wouldStart"] is True and doc["refusals"] == [] and doc["errorType"] is None, doc
    assert writes(calls) == [] and calls, calls
    assert (doc["liveSlot"], doc["newSlot"], doc["firstDeployment"]) == ("blue", "green", False), doc
    assert [(s["percent"], s["weights"]) for s in doc["steps"]] == [
        (10, {"blue": 90, "green": 10}), (50, {"blue": 50, "green": 50}), (100, {"blue": 0, "green": 100})]
    td = doc["taskDefinition"]
    assert td["newImage"] == image and td["oldImage"] != image and td["action"] == "register", td
    assert [a["name"] for a in doc["alarms"]] == list(svc.alarms), doc["alarms"]
    assert all(a["state"] in ("OK", "INSUFFICIENT_DATA") for a in doc["alarms"]), doc["alarms"]
    assert doc["rollbackBound"]["seconds"] == 60 + doc["strategy"]["deploymentTtlSeconds"], doc["rollbackBound"]
    assert doc["durations"]["weightChanges"] == 4, doc["durations"]

    # The text form says the same.
    path = tmp_path / "good.json"
    path.write_text(json.dumps(request))
    text = subprocess.run([str(CLI), "plan", "-f", str(path)], env=cli_env(aws), capture_output=True, text=True,
                          timeout=60)
    assert text.returncode == 0, text.stderr
    for line in ("a deployment would start", "slots: live blue", "idle green", "accepted: strategy.allowShortBake",
                 "1/3   10 %  weights blue 90 / green 10", f"-> {image}", "rollback: a rollback reaches new connections"):
        assert line in text.stdout, (line, text.stdout)

    # What plan said is what create-taskset does.
    arn = W.start(world, request, f"{svc.name}-planned")
    d = W.wait_end(world, arn, timeout=120)
    assert d["status"] == "SUCCEEDED", d
    live = W.primary(world, svc)
    assert W.slot_of(svc, live) == "green"
    assert live["taskDefinition"].endswith(td["revision"]), (live["taskDefinition"], td)

    # Gate checks collected together: a firing alarm and a bake too short for the alarms.
    aws.set_alarm_state(svc.alarms[0], "ALARM", "plan test")
    code, doc, calls = plan({**request, "strategy": {**request["strategy"], "allowShortBake": False}})
    assert code == EXIT_CODES["AlarmFiring"], doc
    assert [r["errorType"] for r in doc["refusals"]] == ["AlarmFiring", "BakeTooShort"], doc["refusals"]
    assert writes(calls) == []
