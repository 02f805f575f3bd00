"""Deployments that must be refused with nothing changed: a second
deployment of a service while one runs, and malformed inputs."""

from __future__ import annotations

import copy
import json

import pytest

from canarytest import world as W
from canarytest.e2e import assert_invariants, function_calls, run, service

REFUSED_STORY = ["Create task set in idle slot", "Could not create task set"]


def mutating_calls(aws) -> list[tuple[str, str]]:
    """Calls by the functions that could change something (anything but
    Describe/List/Get)."""
    return [
        (c["service"], c["operation"])
        for c in aws.calls(caller="function")
        if not c["operation"].startswith(("Describe", "List", "Get"))
    ]


def test_second_deployment_of_the_same_service_is_refused(aws, world):
    svc = service(world)
    first = f"{svc.name}-v2"
    # A 12-s bake: the refused run (up to ~8 s on a loaded 2-core machine)
    # must finish while the first one still bakes step 1 (3 s was flaky).
    arn = W.start(world, svc.request(f"{W.IMAGE_REPO}:v2", steps=(10, 50, 100), bake=12), first)
    W.wait_baking(world, arn, 1)
    before = W.snapshot(world, svc)
    assert len(before["taskSets"]) == 2

    d, events = run(world, svc.request(f"{W.IMAGE_REPO}:v3", steps=(100,), bake=1), f"{svc.name}-v3", timeout=60)

    assert d["status"] == "FAILED"
    assert d["error"] == "CreateFailed", d.get("cause")
    assert "DeploymentInProgress" in d["cause"], d["cause"]
    assert first in d["cause"], d["cause"]  # names the deployment under way
    assert W.story(events) == REFUSED_STORY
    # The running deployment is untouched: same task sets, records, task
    # definitions and instances, still in the bake of its first step...
    assert W.snapshot(world, svc) == before
    running = W.bakes(W.history(world, arn))
    assert len(running) == 1 and running[0]["end"] is None, running
    # ...and still succeeds, with exactly its own weight changes.
    done = W.wait_end(world, arn, timeout=90)
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    changes = assert_invariants(aws, svc)
    assert W.weight_changes(changes, svc) == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
        {"blue": 0, "green": 100},  # the promotion confirms INSYNC by an identical write (issue 12 item 5)
    ]
    sets = W.task_sets(world, svc)
    assert [(t["externalId"], t["status"], W.slot_of(svc, t)) for t in sets] == [(first, "PRIMARY", "green")]
    # v1 and v2 only: the refused deployment registered no revision.
    assert len(W.task_definitions(world, svc.name)) == 2
    assert len(function_calls(aws, "CreateTaskSet", "ecs")) == 1


def _strategy(req, **kv):
    req["strategy"].update(kv)
    return req


MALFORMED = {
    "steps-not-increasing": lambda r: _strategy(r, steps=[50, 10, 100]),
    "step-over-100": lambda r: _strategy(r, steps=[10, 150]),
    "unknown-field": lambda r: _strategy(r, bakeSecs=1),
    "wrong-type": lambda r: _strategy(r, bakeSeconds="two"),
    "ttl-out-of-range": lambda r: _strategy(r, ttlSeconds=1000),
    "nothing-to-deploy": lambda r: {k: v for k, v in r.items() if k != "image"},
    "image-and-task-definition": lambda r: {**r, "taskDefinition": f"{r['target']['service']}:1"},
    "same-set-identifiers": lambda r: (r["target"]["slots"]["green"].update(setIdentifier="blue"), r)[1],
    "not-a-deployment": lambda r: {"hello": "world"},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_refused_with_nothing_changed(aws, world, case):
    svc = service(world)
    request = MALFORMED[case](copy.deepcopy(svc.request(f"{W.IMAGE_REPO}:v2")))
    before = W.snapshot(world, svc)
    r53_before = aws.route53_changes()

    d, events = run(world, json.dumps(request), f"{svc.name}-bad", timeout=60)

    assert d["status"] == "FAILED"
    assert d["error"] == "CreateFailed", d.get("cause")
    assert "InvalidInput" in d["cause"], d["cause"]
    assert "Traffic was not touched" in d["cause"], d["cause"]
    assert W.story(events) == REFUSED_STORY
    assert W.snapshot(world, svc) == before
    assert aws.route53_changes() == r53_before
    assert mutating_calls(aws) == []


def test_a_bake_shorter_than_the_alarms_can_see_is_refused(aws, world):
    """The alarms are 10 s x 1 (+10 s evaluation): a 1 s bake would end
    before they could fire (issue 12, item 12)."""
    svc = service(world)
    request = svc.request(f"{W.IMAGE_REPO}:v2", bake=1, allow_short_bake=False)
    before = W.snapshot(world, svc)

    d, events = run(world, json.dumps(request), f"{svc.name}-short-bake", timeout=60)

    assert d["status"] == "FAILED"
    assert d["error"] == "CreateFailed", d.get("cause")
    assert "BakeTooShort" in d["cause"], d["cause"]
    assert "allowShortBake" in d["cause"], d["cause"]
    assert W.story(events) == REFUSED_STORY
    assert W.snapshot(world, svc) == before
    assert mutating_calls(aws) == []
