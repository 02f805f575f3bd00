"""Tasks that serve: every ECS task is a real HTTP server on its registered
address, stopped (after deregistration) when its task stops; per-image
behaviour; the ECS / Cloud Map realism settings."""

from __future__ import annotations

import functools
import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from world import World, build

from localaws import LocalAws
from localaws import config as la_config

TEST_SECONDS = 60


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Every test here ends within TEST_SECONDS (SIGALRM in the main thread)."""

    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"test took longer than {TEST_SECONDS} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ helpers


def wait_for(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def task_def(aws: LocalAws, image: str, stop_timeout: int | None = None) -> str:
    container: dict[str, Any] = {"name": "app", "image": image, "memory": 128}
    if stop_timeout is not None:
        container["stopTimeout"] = stop_timeout
    return aws.client("ecs").register_task_definition(
        family="app",
        containerDefinitions=[container],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]


def create(w: World, slot: str | dict[str, Any], external_id: str, td: str | None = None, scale: float = 100.0, **extra: Any) -> dict[str, Any]:
    # A slot name, or a Cloud Map service (CreateService's answer) of its own.
    registry = w.blue if slot == "blue" else w.green if slot == "green" else slot
    assert isinstance(registry, dict), registry
    kwargs: dict[str, Any] = {
        "cluster": w.cluster,
        "service": w.service,
        "taskDefinition": td or w.task_def,
        "externalId": external_id,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": [w.subnet], "securityGroups": [w.sg]}},
        "serviceRegistries": [{"registryArn": registry["Arn"]}],
        "scale": {"unit": "PERCENT", "value": scale},
    }
    if "capacityProviderStrategy" not in extra:
        kwargs["launchType"] = "FARGATE"
    kwargs.update(extra)
    return w.aws.client("ecs").create_task_set(**kwargs)["taskSet"]


def instances(aws: LocalAws, service_id: str) -> dict[str, str]:
    """Cloud Map instance id -> AWS_INSTANCE_IPV4."""
    out = aws.client("servicediscovery").list_instances(ServiceId=service_id)["Instances"]
    return {i["Id"]: i["Attributes"]["AWS_INSTANCE_IPV4"] for i in out}


def health(aws: LocalAws, service_id: str) -> dict[str, str]:
    return aws.client("servicediscovery").get_instances_health_status(ServiceId=service_id)["Status"]


def get(address: str, port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, dict[str, str], dict[str, Any]]:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def refuses(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:  # reset while the listener closes: ask again
        return False


def describe_set(aws: LocalAws, arn: str) -> dict[str, Any]:
    return aws.client("ecs").describe_task_sets(cluster="c1", service="svc", taskSets=[arn])["taskSets"][0]


# ------------------------------------------------------------------ tasks that serve


def test_each_task_answers_on_its_registered_address_with_its_image(aws: LocalAws) -> None:
    w = build(aws, desired_count=3)
    td = task_def(aws, "registry.local/app:v7")
    ts = create(w, "blue", "dep-serve", td)
    port = aws.task_port()
    assert port == aws.info()["tasks"]["port"]
    registered = instances(aws, w.blue["Id"])
    assert len(registered) == 3 and len(set(registered.values())) == 3
    for task_id, address in registered.items():
        assert address.startswith("127.") and address != "127.0.0.1"
        status, headers, doc = get(address, port)
        assert status == 200
        assert doc == {
            "image": "registry.local/app:v7",
            "version": "v7",
            "task": task_id,
            "taskSet": ts["id"],
            "externalId": "dep-serve",
            "address": address,
        }
        assert (headers["x-image"], headers["x-version"], headers["x-task"]) == ("registry.local/app:v7", "v7", task_id)
        assert get(address, port, "/health")[0] == 200
    # HTTP/1.1 keep-alive: several requests on one connection
    address = next(iter(registered.values()))
    conn = http.client.HTTPConnection(address, port, timeout=5)
    try:
        conn.request("GET", "/")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        conn.request("GET", "/")
        second = conn.getresponse()
        second.read()
        assert first.status == second.status == 200
        assert conn.sock is sock, "the second request must reuse the connection"
    finally:
        conn.close()
    # nothing listens on the task port of 127.0.0.1
    assert refuses("127.0.0.1", port)


def test_scale_down_and_delete_stop_exactly_those_tasks_after_deregistration(aws: LocalAws) -> None:
    w = build(aws, desired_count=4)
    ecs = aws.client("ecs")
    port = aws.task_port()
    keep = create(w, "blue", "dep-keep")
    ts = create(w, "green", "dep-scale")
    before = instances(aws, w.green["Id"])
    kept = instances(aws, w.blue["Id"])
    assert len(before) == 4
    ecs.update_task_set(cluster="c1", service="svc", taskSet=ts["id"], scale={"unit": "PERCENT", "value": 50.0})
    after = instances(aws, w.green["Id"])
    # deregistered in the call itself; the servers stop afterwards
    assert len(after) == 2 and set(after) <= set(before)
    stopped = {i: a for i, a in before.items() if i not in after}
    for address in stopped.values():
        wait_for(functools.partial(refuses, address, port), what=f"{address} refusing")
    for task_id, address in after.items():
        assert get(address, port)[2]["task"] == task_id
    assert describe_set(aws, ts["taskSetArn"])["runningCount"] == 2
    ecs.delete_task_set(cluster="c1", service="svc", taskSet=ts["id"])
    assert instances(aws, w.green["Id"]) == {}
    for address in after.values():
        wait_for(functools.partial(refuses, address, port), what=f"{address} refusing")
    # the other task set's tasks still serve
    for task_id, address in kept.items():
        assert get(address, port)[2]["task"] == task_id
    assert keep["externalId"] == "dep-keep"


def test_stopped_tasks_are_listed_with_their_stop_times_until_reset(aws: LocalAws) -> None:
    """aws.stopped_tasks(): every task stopped since the reset, with the
    instant its stop was asked for, when it had stopped and what it served
    (what a client-side check of "no request after the stop" needs)."""
    w = build(aws, desired_count=2)
    port = aws.task_port()
    ts = create(w, "blue", "dep-stopped")
    registered = instances(aws, w.blue["Id"])
    for address in registered.values():
        assert get(address, port)[0] == 200
    assert aws.stopped_tasks() == []
    asked = time.time()
    aws.client("ecs").delete_task_set(cluster="c1", service="svc", taskSet=ts["id"])
    stopped = wait_for(lambda: len(aws.stopped_tasks()) == 2 and aws.stopped_tasks(), what="both tasks stopped")
    assert {t["task"] for t in stopped} == set(registered)
    for t in stopped:
        assert t["stopped"] is True and t["requests"] == 1 and t["taskSetArn"] == ts["taskSetArn"]
        assert asked - 1 <= t["stopRequestedAt"] <= t["stoppedAt"] <= time.time()
        assert refuses(t["address"], port)
    assert {t["task"] for t in aws.tasks()} & set(registered) == set()
    aws.reset()
    assert aws.stopped_tasks() == []


def test_graceful_stop_finishes_in_flight_and_closes_idle_keep_alive(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    sd_id = w.green["Id"]
    ts = create(w, "green", "dep-graceful")
    port = aws.task_port()
    (task_id, address), = instances(aws, sd_id).items()

    idle = http.client.HTTPConnection(address, port, timeout=5)
    idle.request("GET", "/")
    assert idle.getresponse().read()  # now an idle keep-alive connection

    aws.set_image_behaviour("app:1", latency_ms=3000)
    result: dict[str, Any] = {}

    def slow_request() -> None:
        conn = http.client.HTTPConnection(address, port, timeout=10)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            result["status"] = resp.status
            result["connection"] = resp.getheader("Connection")
            result["doc"] = json.loads(resp.read())
            result["done"] = time.monotonic()
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = repr(e)
        finally:
            conn.close()

    t = threading.Thread(target=slow_request)
    t.start()
    time.sleep(0.4)  # the request is in flight
    stop_called = time.monotonic()
    aws.client("ecs").delete_task_set(cluster="c1", service="svc", taskSet=ts["id"])
    assert instances(aws, sd_id) == {}, "deregistered before the server stops"
    wait_for(lambda: refuses(address, port), timeout=5, what="new connections refused")
    assert t.is_alive(), "the in-flight request is still being served after the listener closed"

    # the idle keep-alive connection is closed by the server (EOF)
    assert idle.sock is not None
    idle.sock.settimeout(5)
    assert idle.sock.recv(1) == b""
    idle.close()

    t.join(10)
    assert "error" not in result, result
    assert result["status"] == 200 and result["doc"]["task"] == task_id
    assert (result["connection"] or "").lower() == "close"
    assert result["done"] - stop_called >= 0.8  # it was finished, not cut
    wait_for(lambda: aws.client("ecs").describe_task_sets(cluster="c1", service="svc")["taskSets"] == [], what="task set gone")


def test_stop_timeout_cuts_a_request_that_outlives_it(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    ts = create(w, "green", "dep-kill", task_def(aws, "app:cut", stop_timeout=1))
    port = aws.task_port()
    (_task_id, address), = instances(aws, w.green["Id"]).items()
    aws.set_image_behaviour(":cut", latency_ms=4000)
    result: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            get(address, port, timeout=10)
            result["answered"] = True
        except Exception as e:  # noqa: BLE001
            result["error"] = type(e).__name__

    t = threading.Thread(target=slow_request)
    t.start()
    time.sleep(0.3)
    aws.client("ecs").delete_task_set(cluster="c1", service="svc", taskSet=ts["id"])
    t.join(10)
    # the container's stopTimeout (1 s) < the request (4 s): SIGKILL cuts it
    assert "error" in result, result


def test_reset_stops_every_task(aws: LocalAws) -> None:
    w = build(aws)
    create(w, "blue", "dep-reset")
    port = aws.task_port()
    addresses = list(instances(aws, w.blue["Id"]).values())
    assert all(get(a, port)[0] == 200 for a in addresses)
    aws.reset()
    for a in addresses:
        wait_for(functools.partial(refuses, a, port), what=f"{a} refusing after reset")
    assert aws.tasks() == []


# ------------------------------------------------------------------ per-image behaviour


def test_error_rate_is_per_image(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    create(w, "blue", "dep-v1", task_def(aws, "app:v1"))
    create(w, "green", "dep-v2", task_def(aws, "app:v2"))
    port = aws.task_port()
    (v1,) = instances(aws, w.blue["Id"]).values()
    (v2,) = instances(aws, w.green["Id"]).values()
    aws.set_image_behaviour(":v2", error_rate=1.0)
    assert aws.images() == {":v2": {"errorRate": 1.0, "latencyMs": 0.0, "healthCheck": "pass"}}
    assert {get(v1, port)[0] for _ in range(20)} == {200}
    statuses = [get(v2, port) for _ in range(20)]
    assert {s for s, _h, _d in statuses} <= {500, 503}
    assert all(h["x-version"] == "v2" and d["version"] == "v2" for _s, h, d in statuses)
    # a full reference wins over a tag suffix
    aws.set_image_behaviour("app:v2", error_rate=0.5)
    codes = [get(v2, port)[0] for _ in range(200)]
    errors = sum(1 for c in codes if c >= 500)
    assert 60 <= errors <= 140, errors  # binomial(200, 0.5): far outside 6 sigma otherwise
    # the health check stays passing: errors are not a failing container
    assert set(health(aws, w.green["Id"]).values()) == {"HEALTHY"}


def test_added_latency(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    create(w, "blue", "dep-lat")
    (address,) = instances(aws, w.blue["Id"]).values()
    aws.set_image_behaviour(":1", latency_ms=300)
    t0 = time.monotonic()
    assert get(address, aws.task_port())[0] == 200
    assert time.monotonic() - t0 >= 0.3


def test_failing_health_check_keeps_the_task_set_stabilizing(aws: LocalAws) -> None:
    w = build(aws, desired_count=2)
    aws.set_image_behaviour(":bad", health_check="fail")
    ts = create(w, "green", "dep-bad", task_def(aws, "app:bad"))
    port = aws.task_port()
    assert (ts["runningCount"], ts["stabilityStatus"]) == (2, "STABILIZING")
    assert set(health(aws, w.green["Id"]).values()) == {"UNHEALTHY"}
    for address in instances(aws, w.green["Id"]).values():
        assert get(address, port, "/health")[0] == 503
        assert get(address, port)[0] == 200  # it still serves
    time.sleep(0.3)
    assert describe_set(aws, ts["taskSetArn"])["stabilityStatus"] == "STABILIZING"
    # the image is fixed: the next health check passes
    aws.set_image_behaviour(":bad", health_check="pass")
    assert set(health(aws, w.green["Id"]).values()) == {"HEALTHY"}
    assert describe_set(aws, ts["taskSetArn"])["stabilityStatus"] == "STEADY_STATE"


def test_health_plan_unhealthy_maps_to_a_failing_health_check(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    aws.set_unhealthy(next=True)
    ts = create(w, "green", "dep-plan")
    (address,) = instances(aws, w.green["Id"]).values()
    assert get(address, aws.task_port(), "/health")[0] == 503
    assert ts["stabilityStatus"] == "STABILIZING"
    aws.set_healthy(external_id="dep-plan")
    assert get(address, aws.task_port(), "/health")[0] == 200
    assert describe_set(aws, ts["taskSetArn"])["stabilityStatus"] == "STEADY_STATE"


# ------------------------------------------------------------------ realism settings


def test_task_start_time_stabilizing_then_steady_state(aws: LocalAws) -> None:
    w = build(aws, desired_count=2)
    settings = aws.ecs_realism(task_start_seconds=2.0)
    assert settings["taskStartSeconds"] == 2.0
    t0 = time.monotonic()
    ts = create(w, "green", "dep-start")
    assert (ts["runningCount"], ts["pendingCount"], ts["stabilityStatus"]) == (0, 2, "STABILIZING")
    assert instances(aws, w.green["Id"]) == {}, "registered only when RUNNING"
    assert {t["lastStatus"] for t in aws.tasks()} == {"PROVISIONING"}
    d = wait_for(
        lambda: (x := describe_set(aws, ts["taskSetArn"]))["stabilityStatus"] == "STEADY_STATE" and x, what="STEADY_STATE"
    )
    assert time.monotonic() - t0 >= 1.9
    assert (d["runningCount"], d["pendingCount"]) == (2, 0)
    registered = instances(aws, w.green["Id"])
    assert len(registered) == 2
    assert all(get(a, aws.task_port())[0] == 200 for a in registered.values())
    # reset() puts the fast default back
    aws.reset()
    assert aws.ecs_realism()["taskStartSeconds"] == 0.0


def test_read_lag_hides_a_new_task_set(aws: LocalAws) -> None:
    w = build(aws)
    ecs = aws.client("ecs")
    aws.ecs_realism(read_lag_ms=3000)
    ts = create(w, "green", "dep-lag")
    t_created = time.monotonic()
    services = ecs.describe_services(cluster="c1", services=["svc"])["services"]
    assert services[0]["serviceName"] == "svc" and services[0]["taskSets"] == []
    out = ecs.describe_task_sets(cluster="c1", service="svc", taskSets=[ts["taskSetArn"]])
    assert out["taskSets"] == []
    assert out["failures"] == [{"arn": ts["taskSetArn"], "reason": "MISSING"}]
    assert time.monotonic() - t_created < 2.8, "the checks above ran inside the lag"
    wait_for(lambda: ecs.describe_task_sets(cluster="c1", service="svc", taskSets=[ts["id"]])["taskSets"], what="visible")
    assert time.monotonic() - t_created >= 2.0
    assert [t["id"] for t in ecs.describe_services(cluster="c1", services=["svc"])["services"][0]["taskSets"]] == [ts["id"]]
    # the task set existed all along: its tasks served during the lag
    assert len(instances(aws, w.green["Id"])) == 2


def test_unknown_health_without_a_health_check(aws: LocalAws) -> None:
    w = build(aws, desired_count=2)
    sd = aws.client("servicediscovery")
    plain = sd.create_service(Name="service-plain", NamespaceId=w.namespace_id, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})[
        "Service"
    ]
    aws.set_image_behaviour(":1", health_check="fail")
    create(w, plain, "dep-plain")
    assert set(health(aws, plain["Id"]).values()) == {"UNKNOWN"}
    # DiscoverInstances ignores the health filter there (no data- host prefix locally)
    data = aws.client("servicediscovery", config=Config(user_agent_extra=la_config.HARNESS_UA_MARKER, inject_host_prefix=False))
    found = data.discover_instances(NamespaceName="ns-2", ServiceName="service-plain", HealthStatus="HEALTHY")["Instances"]
    assert len(found) == 2 and {i["HealthStatus"] for i in found} == {"UNKNOWN"}
    # with HealthCheckCustomConfig: as ECS reports (the failing container health check)
    create(w, "green", "dep-custom")
    assert set(health(aws, w.green["Id"]).values()) == {"UNHEALTHY"}
    assert data.discover_instances(NamespaceName="ns-2", ServiceName="service-green", HealthStatus="HEALTHY")["Instances"] == []
    # the setting switches it off (moto's old answer)
    aws.ecs_realism(unknown_health=False)
    assert set(health(aws, plain["Id"]).values()) == {"HEALTHY"}


def test_create_task_set_refuses_launch_type_with_capacity_provider_strategy(aws: LocalAws) -> None:
    w = build(aws)
    with pytest.raises(ClientError) as e:
        create(w, "green", "dep-both", launchType="FARGATE", capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "launch type and capacity provider strategy" in e.value.response["Error"]["Message"]
    assert aws.client("ecs").describe_task_sets(cluster="c1", service="svc")["taskSets"] == []
    assert aws.tasks() == []


def test_sixth_task_set_refused_draining_ones_included_then_gone(aws: LocalAws) -> None:
    w = build(aws, desired_count=1)
    ecs = aws.client("ecs")
    aws.ecs_realism(task_stop_seconds=4)
    made = [create(w, "blue" if i % 2 else "green", f"dep-q{i}") for i in range(5)]
    deleted = ecs.delete_task_set(cluster="c1", service="svc", taskSet=made[0]["id"])["taskSet"]
    assert deleted["status"] == "DRAINING"
    listed = {t["id"]: t["status"] for t in ecs.describe_task_sets(cluster="c1", service="svc")["taskSets"]}
    assert listed[made[0]["id"]] == "DRAINING" and len(listed) == 5
    with pytest.raises(ClientError) as e:
        create(w, "green", "dep-q5")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert e.value.response["Error"]["Message"].startswith("5 deployments exist on the service.")
    # a second DeleteTaskSet of a DRAINING task set answers it again
    assert ecs.delete_task_set(cluster="c1", service="svc", taskSet=made[0]["id"])["taskSet"]["status"] == "DRAINING"
    wait_for(
        lambda: made[0]["id"] not in {t["id"] for t in ecs.describe_task_sets(cluster="c1", service="svc")["taskSets"]},
        what="DRAINING task set gone",
    )
    assert create(w, "green", "dep-q6")["externalId"] == "dep-q6"
    with pytest.raises(ClientError) as e:
        ecs.delete_task_set(cluster="c1", service="svc", taskSet=made[0]["id"])
    assert e.value.response["Error"]["Code"] == "TaskSetNotFoundException"


def test_server_exit_stops_every_task(tmp_path: Any) -> None:
    """A local AWS of its own (not the session's): its tasks stop when it exits."""
    with LocalAws(run_dir=tmp_path / "run", lambda_mode="none", start_timeout=60) as own:
        w = build(own, desired_count=2)
        create(w, "blue", "dep-exit")
        port = own.task_port()
        addresses = list(instances(own, w.blue["Id"]).values())
        assert len(addresses) == 2 and all(get(a, port)[0] == 200 for a in addresses)
    for a in addresses:
        wait_for(functools.partial(refuses, a, port), what=f"{a} refusing after the server exited")
    # stopped by the scheduler (deregistered, then a graceful stop), not just killed with the process
    log = (tmp_path / "run" / "localaws.log").read_text()
    assert log.count("localaws.tasks INFO task ") >= 4 and log.count(" stopped: {") == 2, log[-2000:]
