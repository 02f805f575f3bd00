"""The catalogue of malformed and dangerous deployment inputs (issue 5,
part 3): each one an input create-taskset must refuse under a named error
without touching anything. Run as real executions by the reliability suite
(tests/reliability/test_bad_inputs.py) and given to `ecs-dns-canary plan`
by the end-to-end suite (tests/e2e/test_e2e_plan.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from localaws import LocalAws

from .world import IMAGE_REPO

# The image every catalogue input deploys.
IMAGE = f"{IMAGE_REPO}:v2"


class HasAws(Protocol):
    @property
    def aws(self) -> LocalAws: ...


@dataclass
class Ctx:
    """What an input is built from: the case's own service, another one, and
    a few specially prepared targets."""

    w: Any
    svc: Any
    other: Any
    lane: HasAws  # a reliability lane, or anything with the local AWS as .aws
    extra: dict[str, Any]

    def req(self, steps: Any = (50, 100), **strategy: Any) -> dict[str, Any]:
        return self.svc.request(IMAGE, steps=steps, bake=0, ready_poll=1, drain=0, **strategy)


def _with(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `d` with the dotted `path` set to `value` (`...` deletes it)."""
    d = copy.deepcopy(d)
    keys = path.split(".")
    node = d
    for k in keys[:-1]:
        node = node[k]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


def _swap_set_ids(c: Ctx) -> dict[str, Any]:
    r = c.req()
    s = r["target"]["slots"]
    s["blue"]["setIdentifier"], s["green"]["setIdentifier"] = s["green"]["setIdentifier"], s["blue"]["setIdentifier"]
    return r


def _swap_dns_names(c: Ctx) -> dict[str, Any]:
    r = c.req()
    s = r["target"]["slots"]
    s["blue"]["dnsName"], s["green"]["dnsName"] = s["green"]["dnsName"], s["blue"]["dnsName"]
    return r


@dataclass
class Bad:
    id: str
    what: str
    expect: str
    build: Callable[[Ctx], Any]
    name: str | None = None  # execution name (deployment id) override
    prepare: Callable[[Ctx], None] | None = None  # state set up before the snapshot
    bug: str | None = None  # xfail(strict) reason when the engine accepts it


def _fire_alarm(c: Ctx) -> None:
    c.lane.aws.set_alarm_state(c.svc.alarms[1], "ALARM", "latency above threshold")


def _split_weights(c: Ctx) -> None:
    r53 = c.w.c("route53")
    r53.change_resource_record_sets(
        HostedZoneId=c.svc.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": c.svc.record_name,
                        "Type": "CNAME",
                        "SetIdentifier": slot,
                        "Weight": 50,
                        "TTL": 10,
                        "ResourceRecords": [{"Value": dns}],
                    },
                }
                for slot, dns in (("blue", c.svc.blue_dns), ("green", c.svc.green_dns))
            ]
        },
    )


CATALOGUE: list[Bad] = [
    # ---- malformed JSON shapes
    Bad("not-an-object", "the input is a JSON array", "InvalidInput", lambda c: []),
    Bad("input-null", "the input is JSON null", "InvalidInput", lambda c: None),
    Bad("missing-target", "no target", "InvalidInput", lambda c: _with(c.req(), "target", ...)),
    Bad("missing-cluster", "target without cluster", "InvalidInput", lambda c: _with(c.req(), "target.cluster", ...)),
    Bad("missing-green-slot", "slots without green", "InvalidInput", lambda c: _with(c.req(), "target.slots.green", ...)),
    Bad("nothing-to-deploy", "neither image nor taskDefinition", "InvalidInput", lambda c: _with(c.req(), "image", ...)),
    Bad("image-and-task-definition", "both image and taskDefinition", "InvalidInput",
        lambda c: {**c.req(), "taskDefinition": c.svc.name}),
    Bad("unknown-field", "unknown top-level field `images`", "InvalidInput", lambda c: {**c.req(), "images": ["x"]}),
    Bad("unknown-strategy-field", "typo `bakeSecond` in strategy", "InvalidInput", lambda c: _with(c.req(), "strategy.bakeSecond", 1)),
    Bad("steps-as-string", "steps given as a string", "InvalidInput", lambda c: _with(c.req(), "strategy.steps", "10,50,100")),
    Bad("bake-negative", "bakeSeconds -1", "InvalidInput", lambda c: _with(c.req(), "strategy.bakeSeconds", -1)),
    Bad("target-as-string", "target given as a string", "InvalidInput", lambda c: _with(c.req(), "target", "backend")),
    Bad("step-above-255", "a step of 300 (not even a byte)", "InvalidInput", lambda c: _with(c.req(), "strategy.steps", [10, 300])),
    Bad("insufficient-data-unknown", "alarms.insufficientData \"maybe\"", "InvalidInput",
        lambda c: _with(c.req(), "alarms.insufficientData", "maybe")),
    # ---- strategy
    Bad("steps-not-increasing", "steps [50, 10, 100]", "InvalidInput", lambda c: c.req(steps=[50, 10, 100])),
    Bad("steps-above-100", "steps [10, 150]", "InvalidInput", lambda c: c.req(steps=[10, 150])),
    Bad("steps-not-ending-at-100", "steps [10, 50]", "InvalidInput", lambda c: c.req(steps=[10, 50])),
    Bad("steps-empty", "steps []", "InvalidInput", lambda c: c.req(steps=[])),
    Bad("step-zero", "steps [0, 100]", "InvalidInput", lambda c: c.req(steps=[0, 100])),
    Bad("steps-repeated", "steps [50, 50, 100]", "InvalidInput", lambda c: c.req(steps=[50, 50, 100])),
    Bad("ttl-above-300", "ttlSeconds 301", "InvalidInput", lambda c: c.req(ttlSeconds=301)),
    Bad("ttl-zero", "ttlSeconds 0", "InvalidInput", lambda c: c.req(ttlSeconds=0)),
    Bad("bake-over-a-day", "bakeSeconds 86401", "InvalidInput", lambda c: _with(c.req(), "strategy.bakeSeconds", 86401)),
    Bad("poll-longer-than-timeout", "readyPollSeconds 60 > readyTimeoutSeconds 30", "InvalidInput",
        lambda c: _with(_with(c.req(), "strategy.readyPollSeconds", 60), "strategy.readyTimeoutSeconds", 30)),
    Bad("duplicate-alarm", "the same alarm listed twice", "InvalidInput",
        lambda c: _with(c.req(), "alarms.names", [c.svc.alarms[0], c.svc.alarms[0]])),
    # ---- target shape
    Bad("duplicate-slots", "green is a copy of blue", "InvalidInput",
        lambda c: _with(c.req(), "target.slots.green", c.req()["target"]["slots"]["blue"])),
    Bad("same-registry-both-slots", "both slots on blue's Cloud Map service", "InvalidInput",
        lambda c: _with(c.req(), "target.slots.green.registryArn", c.svc.blue_arn)),
    Bad("registry-arn-malformed", "registryArn is not a Cloud Map service ARN", "InvalidInput",
        lambda c: _with(c.req(), "target.slots.green.registryArn", "arn:aws:ecs:us-east-1:123456789012:service/x")),
    Bad("zone-id-malformed", "hostedZoneId with a path in it", "InvalidInput", lambda c: _with(c.req(), "target.hostedZoneId", "Z123/../x")),
    Bad("record-is-slot-dns", "recordName equals blue's DNS name (a CNAME to itself)", "InvalidInput",
        lambda c: _with(c.req(), "target.recordName", c.svc.blue_dns)),
    Bad("container-empty", "container \"\"", "InvalidInput", lambda c: _with(c.req(), "target.container", "")),
    # ---- image and task definition
    Bad("image-with-spaces", "image \"not an image\"", "InvalidInput", lambda c: {**c.req(), "image": "not an image"}),
    Bad("image-upper-case", "image with an upper-case repository", "InvalidInput", lambda c: {**c.req(), "image": "Backend/App:v2"}),
    Bad("image-bad-digest", "image digest that is not sha256:<64 hex>", "InvalidInput", lambda c: {**c.req(), "image": "backend@sha256:abc"}),
    Bad("image-bad-tag", "image tag starting with '-'", "InvalidInput", lambda c: {**c.req(), "image": "backend:-v2"}),
    Bad("task-definition-missing", "taskDefinition that does not exist", "TargetNotFound",
        lambda c: {**_with(c.req(), "image", ...), "taskDefinition": "no-such-family:7"}),
    Bad("container-not-in-task-definition", "container `sidecar` is not in the task definition", "TargetMisconfigured",
        lambda c: _with(c.req(), "target.container", "sidecar")),
    # ---- deployment id (the execution name)
    Bad("deployment-id-too-long", "execution name of 81 characters", "InvalidInput", lambda c: c.req(), name="d" * 81),
    Bad("deployment-id-bad-characters", "execution name `deploy@v2`", "InvalidInput", lambda c: c.req(), name="deploy@v2"),
    # ---- targets that do not exist
    Bad("unknown-cluster", "cluster that does not exist", "TargetNotFound", lambda c: _with(c.req(), "target.cluster", "no-such-cluster")),
    Bad("unknown-service", "ECS service that does not exist", "TargetNotFound", lambda c: _with(c.req(), "target.service", "no-such-service")),
    Bad("unknown-zone", "hosted zone that does not exist", "TargetNotFound", lambda c: _with(c.req(), "target.hostedZoneId", "Z0000000000NOSUCHZONE")),
    Bad("unknown-record", "record name with no weighted records", "TargetNotFound", lambda c: _with(c.req(), "target.recordName", "nothing-here.ns-1")),
    Bad("unknown-alarm", "alarm that does not exist", "TargetNotFound", lambda c: _with(c.req(), "alarms.names", ["no-such-alarm"])),
    Bad("unknown-cloud-map-service", "registryArn of a Cloud Map service that does not exist", "TargetNotFound",
        lambda c: _with(c.req(), "target.slots.green.registryArn", c.svc.green_arn.rsplit("/", 1)[0] + "/srv-doesnotexist0000")),
    # ---- dangerous: resources exist but do not fit together
    Bad("set-identifiers-swapped", "blue's setIdentifier is `green` and green's `blue`", "TargetMisconfigured", _swap_set_ids),
    Bad("dns-names-swapped", "blue's dnsName is green's and green's blue's", "TargetMisconfigured", _swap_dns_names),
    Bad("blue-registry-of-other-service", "blue's registryArn is another service's blue slot", "TargetMisconfigured",
        lambda c: _with(c.req(), "target.slots.blue.registryArn", c.other.blue_arn)),
    Bad("green-registry-of-other-service", "green's registryArn is another service's green slot (the record points at this service's)",
        "TargetMisconfigured", lambda c: _with(c.req(), "target.slots.green.registryArn", c.other.green_arn)),
    Bad("records-ttl-600", "weighted records with TTL 600 and no ttlSeconds", "TargetMisconfigured",
        lambda c: c.extra["ttl600"].request(IMAGE, steps=(50, 100), bake=0, ready_poll=1, drain=0)),
    Bad("not-external-controller", "ECS service on the ECS deployment controller", "TargetMisconfigured",
        lambda c: _with(c.req(), "target.service", c.extra["plain_service"])),
    Bad("alarm-already-firing", "a gate alarm is in ALARM before the start", "AlarmFiring", lambda c: c.req(), prepare=_fire_alarm),
    Bad("traffic-split-one-task-set", "records at 50/50 while only blue has a task set", "DeploymentInProgress",
        lambda c: c.req(), prepare=_split_weights),
]
