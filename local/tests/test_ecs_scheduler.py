"""The stand-in ECS scheduler: task sets get Cloud Map instances and counts."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from world import build

from localaws import LocalAws


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Every test here ends within 60 s (SIGALRM in the main thread)."""

    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError("test took longer than 60 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _health(aws: LocalAws, service_id: str) -> dict[str, str]:
    return aws.client("servicediscovery").get_instances_health_status(ServiceId=service_id)["Status"]


def test_create_task_set_registers_instances_with_ecs_attributes(aws: LocalAws) -> None:
    w = build(aws, desired_count=3)
    ts = w.create_task_set("blue", "dep-1", scale=50.0)
    # ceil(3 x 50%) = 2, as ECS rounds up
    assert (ts["computedDesiredCount"], ts["runningCount"], ts["pendingCount"]) == (2, 2, 0)
    assert ts["stabilityStatus"] == "STEADY_STATE"
    instances = aws.client("servicediscovery").list_instances(ServiceId=w.blue["Id"])["Instances"]
    assert len(instances) == 2
    attrs = instances[0]["Attributes"]
    assert attrs["ECS_TASK_SET_EXTERNAL_ID"] == "dep-1"
    assert attrs["ECS_CLUSTER_NAME"] == "c1" and attrs["ECS_SERVICE_NAME"] == "svc"
    assert attrs["ECS_TASK_DEFINITION_FAMILY"] == "app"
    # a real task: its own loopback address (never 127.0.0.1) on the world's task port
    assert attrs["AWS_INSTANCE_IPV4"].startswith("127.") and attrs["AWS_INSTANCE_IPV4"] != "127.0.0.1"
    assert attrs["AWS_INSTANCE_PORT"] == str(aws.task_port())
    assert len({i["Attributes"]["AWS_INSTANCE_IPV4"] for i in instances}) == 2
    assert set(_health(aws, w.blue["Id"]).values()) == {"HEALTHY"}
    assert aws.client("servicediscovery").list_instances(ServiceId=w.green["Id"])["Instances"] == []
    described = aws.client("ecs").describe_services(cluster="c1", services=["svc"])["services"][0]["taskSets"][0]
    assert (described["runningCount"], described["computedDesiredCount"]) == (2, 2)


def test_create_task_set_with_the_same_client_token_is_one_task_set(aws: LocalAws) -> None:
    # ECS API Reference, CreateTaskSet clientToken: a retry (e.g. after a lost
    # answer) returns the task set the first call made and starts nothing.
    w = build(aws, desired_count=2)
    first = w.create_task_set("green", "dep-tok", client_token="tok-1")
    again = w.create_task_set("green", "dep-tok", client_token="tok-1")
    assert again["taskSetArn"] == first["taskSetArn"]
    sets = aws.client("ecs").describe_services(cluster="c1", services=["svc"])["services"][0]["taskSets"]
    assert [t["taskSetArn"] for t in sets] == [first["taskSetArn"]]
    assert len(aws.client("servicediscovery").list_instances(ServiceId=w.green["Id"])["Instances"]) == 2
    other = w.create_task_set("blue", "dep-other", client_token="tok-2")
    assert other["taskSetArn"] != first["taskSetArn"]


def test_next_task_set_can_stay_unhealthy(aws: LocalAws) -> None:
    w = build(aws)
    aws.set_unhealthy(next=True)
    ts = w.create_task_set("green", "dep-2")
    assert ts["stabilityStatus"] == "STABILIZING"
    assert set(_health(aws, w.green["Id"]).values()) == {"UNHEALTHY"}
    # only the next one: the one after is healthy again
    ts2 = w.create_task_set("blue", "dep-3")
    assert ts2["stabilityStatus"] == "STEADY_STATE"
    # and a plan can be changed later by externalId
    aws.set_healthy(external_id="dep-2")
    assert set(_health(aws, w.green["Id"]).values()) == {"HEALTHY"}
    d = aws.client("ecs").describe_task_sets(cluster="c1", service="svc", taskSets=[ts["id"]])["taskSets"][0]
    assert d["stabilityStatus"] == "STEADY_STATE"


def test_slow_task_set_becomes_healthy_after_the_delay(aws: LocalAws) -> None:
    w = build(aws)
    aws.set_slow(0.6, external_id="dep-4")
    ts = w.create_task_set("green", "dep-4")
    assert (ts["runningCount"], ts["pendingCount"], ts["stabilityStatus"]) == (0, 2, "STABILIZING")
    # pending tasks are not registered in Cloud Map yet (ECS registers a task when it runs)
    assert _health(aws, w.green["Id"]) == {}
    time.sleep(1.0)
    d = aws.client("ecs").describe_task_sets(cluster="c1", service="svc", taskSets=[ts["taskSetArn"]])["taskSets"][0]
    assert (d["runningCount"], d["pendingCount"], d["stabilityStatus"]) == (2, 0, "STEADY_STATE")
    assert set(_health(aws, w.green["Id"]).values()) == {"HEALTHY"}


def test_scale_and_delete_follow_the_task_set(aws: LocalAws) -> None:
    w = build(aws, desired_count=4)
    ecs = aws.client("ecs")
    sd = aws.client("servicediscovery")
    ts = w.create_task_set("green", "dep-5", scale=25.0)
    assert len(sd.list_instances(ServiceId=w.green["Id"])["Instances"]) == 1
    ecs.update_task_set(cluster="c1", service="svc", taskSet=ts["id"], scale={"unit": "PERCENT", "value": 100.0})
    assert len(sd.list_instances(ServiceId=w.green["Id"])["Instances"]) == 4
    deleted = ecs.delete_task_set(cluster="c1", service="svc", taskSet=ts["id"], force=True)["taskSet"]
    assert deleted["status"] == "DRAINING"
    assert sd.list_instances(ServiceId=w.green["Id"])["Instances"] == []
    # gone once its tasks stopped (at once with the fast defaults)
    deadline = time.monotonic() + 10
    while ecs.describe_task_sets(cluster="c1", service="svc")["taskSets"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ecs.describe_task_sets(cluster="c1", service="svc")["taskSets"] == []
    with pytest.raises(ClientError) as e:
        ecs.delete_task_set(cluster="c1", service="svc", taskSet=ts["id"])
    assert e.value.response["Error"]["Code"] == "TaskSetNotFoundException"
    with pytest.raises(ClientError) as e:
        ecs.delete_task_set(cluster="c1", service="nope", taskSet=ts["id"])
    assert e.value.response["Error"]["Code"] == "ServiceNotFoundException"


def test_primary_task_set_by_id(aws: LocalAws) -> None:
    w = build(aws)
    ecs = aws.client("ecs")
    a = w.create_task_set("blue", "dep-6")
    b = w.create_task_set("green", "dep-7")
    ecs.update_service_primary_task_set(cluster="c1", service="svc", primaryTaskSet=b["id"])
    status = {t["id"]: t["status"] for t in ecs.describe_services(cluster="c1", services=["svc"])["services"][0]["taskSets"]}
    assert status == {a["id"]: "ACTIVE", b["id"]: "PRIMARY"}
    with pytest.raises(ClientError) as e:
        ecs.update_service_primary_task_set(cluster="c1", service="svc", primaryTaskSet="ecs-svc/0")
    assert e.value.response["Error"]["Code"] == "TaskSetNotFoundException"


def test_failed_create_task_set_leaves_nothing_behind(aws: LocalAws) -> None:
    w = build(aws)
    ecs = aws.client("ecs")
    with pytest.raises(ClientError):
        ecs.create_task_set(
            cluster="c1",
            service="svc",
            taskDefinition=w.task_def,
            externalId="dep-8",
            launchType="FARGATE",
            # no network configuration: moto fails while starting the tasks
            serviceRegistries=[{"registryArn": w.green["Arn"]}],
            scale={"unit": "PERCENT", "value": 100.0},
        )
    assert ecs.describe_task_sets(cluster="c1", service="svc")["taskSets"] == []
    assert aws.client("servicediscovery").list_instances(ServiceId=w.green["Id"])["Instances"] == []
