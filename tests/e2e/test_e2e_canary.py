"""Deployments that succeed: a 3-step canary, blue/green, and the next
deployment going back to the other slot."""

from __future__ import annotations

from canarytest import world as W
from canarytest.e2e import assert_invariants, function_calls, run, service


def image_of(w: W.World, task_definition: str) -> str:
    td = w.c("ecs").describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    return td["containerDefinitions"][0]["image"]


def assert_promoted(w: W.World, svc: W.Service, name: str, slot: str, image: str, old_id: str) -> None:
    """After a successful deployment: one task set, PRIMARY, in ``slot``,
    serving ``image``; the old one deleted; Cloud Map instances only in
    ``slot`` and all of the new task set."""
    sets = W.task_sets(w, svc)
    assert [(t["externalId"], t["status"], W.slot_of(svc, t)) for t in sets] == [(name, "PRIMARY", slot)]
    assert old_id not in {t["id"] for t in sets}
    gone = w.c("ecs").describe_task_sets(cluster=svc.cluster, service=svc.name, taskSets=[old_id])
    assert gone["taskSets"] == [], gone
    assert image_of(w, sets[0]["taskDefinition"]) == image
    other = "blue" if slot == "green" else "green"
    assert W.instances(w, svc, other) == []
    live = W.instances(w, svc, slot)
    assert len(live) == 2
    assert {i["Attributes"]["ECS_TASK_SET_EXTERNAL_ID"] for i in live} == {name}


def test_three_step_canary_promotes_green(aws, world):
    svc = service(world)
    old = W.primary(world, svc)
    assert W.slot_of(svc, old) == "blue" and W.weights(world, svc) == {"blue": 100, "green": 0}
    image = f"{W.IMAGE_REPO}:v2"
    name = f"{svc.name}-v2"

    d, events = run(world, svc.request(image, steps=(10, 50, 100), bake=1), name)

    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    assert W.story(events) == W.canary_story(3)
    changes = assert_invariants(aws, svc)
    assert W.weight_changes(changes, svc) == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
        {"blue": 0, "green": 100},  # the promotion confirms INSYNC by an identical write (issue 12 item 5)
    ]
    assert W.weights(world, svc) == {"blue": 0, "green": 100}
    assert_promoted(world, svc, name, "green", image, old["id"])
    # Every bake passed by its timeout (no alarm event), every gate passed.
    assert [b["end"] for b in W.bakes(events)] == ["TaskTimedOut"] * 3
    # The old task set was deleted only after its slot's weight reached 0.
    last_weight = [c for c in changes if c["caller"] == "function"][-1]
    deletes = function_calls(aws, "DeleteTaskSet", "ecs")
    assert len(deletes) == 1 and deletes[0]["seq"] > last_weight["callSeq"]
    # The deployment events (issue 16 item 2) the local AWS's EventBridge kept, in order.
    sent = [e for e in aws.put_events() if e["detail"].get("deploymentId") == name]
    assert [e["detail-type"] for e in sent] == (
        ["Deployment Started"] + ["Deployment Step Started", "Deployment Step Passed"] * 3 + ["Deployment Succeeded"]
    )
    assert [e["detail"]["weights"] for e in sent if e["detail-type"] == "Deployment Step Started"] == W.weight_changes(
        changes, svc
    )[:3]


def test_blue_green_single_step(aws, world):
    svc = service(world)
    old = W.primary(world, svc)
    image = f"{W.IMAGE_REPO}:v2"
    name = f"{svc.name}-bg"

    d, events = run(world, svc.request(image, steps=(100,), bake=1), name)

    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    assert W.story(events) == W.canary_story(1)
    changes = assert_invariants(aws, svc)
    # The step, then the promotion's identical write that confirms INSYNC (issue 12 item 5).
    assert W.weight_changes(changes, svc) == [{"blue": 0, "green": 100}, {"blue": 0, "green": 100}]
    assert_promoted(world, svc, name, "green", image, old["id"])


def test_next_deployment_goes_back_to_blue(aws, world):
    svc = service(world)
    first = W.primary(world, svc)
    v2, v3 = f"{W.IMAGE_REPO}:v2", f"{W.IMAGE_REPO}:v3"

    d2, _ = run(world, svc.request(v2, steps=(100,), bake=1), f"{svc.name}-v2")
    assert d2["status"] == "SUCCEEDED", (d2.get("error"), d2.get("cause"))
    green = W.primary(world, svc)
    assert W.slot_of(svc, green) == "green"
    mark = aws.route53_changes()[-1]["seq"]

    d3, events = run(world, svc.request(v3, steps=(50, 100), bake=1), f"{svc.name}-v3")

    assert d3["status"] == "SUCCEEDED", (d3.get("error"), d3.get("cause"))
    assert W.story(events) == W.canary_story(2)
    changes = assert_invariants(aws, svc)
    assert W.weight_changes(aws.route53_changes(since=mark), svc) == [
        {"blue": 50, "green": 50},
        {"blue": 100, "green": 0},
        {"blue": 100, "green": 0},  # the promotion confirms INSYNC by an identical write (issue 12 item 5)
    ]
    assert W.weights(world, svc) == {"blue": 100, "green": 0}
    assert_promoted(world, svc, f"{svc.name}-v3", "blue", v3, green["id"])
    assert first["id"] not in {t["id"] for t in W.task_sets(world, svc)}
    # Three revisions of the family: v1 (the world), v2, v3.
    assert len(W.task_definitions(world, svc.name)) == 3
    assert len(changes) >= 4
