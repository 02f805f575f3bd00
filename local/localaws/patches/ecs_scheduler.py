"""ECS: a stand-in for the scheduler, so task sets get (fake) tasks in Cloud Map.

moto starts no tasks and registers nothing in Cloud Map; its task sets are
`STEADY_STATE` from birth and have no `runningCount`, `pendingCount` or
`computedDesiredCount`. A deployment waits for the new task set's instances
to be healthy in its slot's Cloud Map service, so this module plays the
scheduler:

- CreateTaskSet: registers `computedDesiredCount` instances (service
  `desiredCount` x `scale` percent, rounded up as ECS does, at least 1) in
  each Cloud Map service of the task set's `serviceRegistries`, with the
  attributes ECS sets (`ECS_TASK_SET_EXTERNAL_ID`, `AWS_INSTANCE_IPV4`,
  `ECS_CLUSTER_NAME`, `ECS_SERVICE_NAME`, `ECS_TASK_DEFINITION_FAMILY`,
  `AVAILABILITY_ZONE`, `REGION`), and fills the task set's counts and
  `stabilityStatus`. The call is also made atomic: moto appended the task set
  before starting its tasks, so a failure there (HTTP 500) left a task set
  behind; now a failed CreateTaskSet leaves nothing.
- UpdateTaskSet (scale): registers or deregisters instances to match.
- DeleteTaskSet: deregisters the task set's instances.
- Health plans (control API `/_localaws/task-set-health`): a task set (by
  externalId, task set id or ARN, or "the next one created") can be
  `healthy` (default: healthy at once, STEADY_STATE), `unhealthy` (instances
  UNHEALTHY in GetInstancesHealthStatus, custom health status; running but
  STABILIZING forever) or `slow` (pending, UNHEALTHY and STABILIZING for
  `delaySeconds`, then healthy and STEADY_STATE)."""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from typing import Any

from moto.ecs import models as ecs_models
from moto.servicediscovery.models import servicediscovery_backends

from ..state import MOTO_LOCK, STATE, HealthPlan

_ip_counter = itertools.count(1)


def _next_ip() -> str:
    n = next(_ip_counter)
    return f"10.0.{(n // 250) % 250}.{n % 250 + 2}"


def _service_obj(backend: Any, task_set: Any) -> Any:
    cluster_name = task_set.cluster.split("/")[-1]
    service_name = task_set.service.split("/")[-1]
    return backend.services.get(f"{cluster_name}:{service_name}")


def computed_desired_count(backend: Any, task_set: Any) -> int:
    service = _service_obj(backend, task_set)
    desired = getattr(service, "desired_count", 1) if service is not None else 1
    scale = task_set.scale or {"value": 100.0, "unit": "PERCENT"}
    value = float(scale.get("value", 100.0))
    return max(1, math.ceil(desired * value / 100.0))


def _registry_target(registry_arn: str) -> tuple[str, str, str]:
    """(account, region, service id) of a Cloud Map service ARN."""
    parts = registry_arn.split(":")
    return parts[4], parts[3], parts[5].split("/")[-1]


def _set_counts(task_set: Any, desired: int, running: int, pending: int, steady: bool) -> None:
    from moto.core.utils import utcnow

    # Both spellings: moto's serializer reads the shape member name.
    task_set.computedDesiredCount = desired
    task_set.runningCount = running
    task_set.pendingCount = pending
    status = "STEADY_STATE" if steady else "STABILIZING"
    if getattr(task_set, "stabilityStatus", None) != status:
        task_set.stabilityStatusAt = utcnow()
    task_set.stabilityStatus = status
    task_set.updatedAt = utcnow()


def _set_instances_health(record: dict[str, Any], healthy: bool) -> None:
    status = "HEALTHY" if healthy else "UNHEALTHY"
    for account, region, service_id, instance_id in record["instances"]:
        try:
            svc = servicediscovery_backends[account][region].get_service(service_id)
        except Exception:  # noqa: BLE001 - the Cloud Map service is gone
            continue
        for inst in svc.instances:
            if inst.instance_id == instance_id:
                inst.health_status = status


def _apply_plan(record: dict[str, Any], plan: HealthPlan) -> None:
    task_set = record["taskSet"]
    desired = record["desired"]
    for t in record.get("timers", []):
        t.cancel()
    record["timers"] = []
    record["plan"] = plan
    if plan.mode == "healthy":
        _set_instances_health(record, True)
        _set_counts(task_set, desired, desired, 0, True)
    elif plan.mode == "unhealthy":
        _set_instances_health(record, False)
        _set_counts(task_set, desired, desired, 0, False)
    elif plan.mode == "slow":
        _set_instances_health(record, False)
        _set_counts(task_set, desired, 0, desired, False)

        def become_healthy() -> None:
            with MOTO_LOCK, STATE.lock:
                if record.get("plan") is plan and record["taskSet"].task_set_arn in STATE.task_set_instances:
                    record["plan"] = HealthPlan("healthy")
                    _set_instances_health(record, True)
                    _set_counts(task_set, record["desired"], record["desired"], 0, True)

        timer = threading.Timer(max(0.0, plan.delay_seconds), become_healthy)
        timer.daemon = True
        record["timers"].append(timer)
        STATE.timers.append(timer)
        timer.start()
    else:
        raise ValueError(f"unknown health mode {plan.mode!r}: use healthy, unhealthy or slow")


def _register(task_set: Any, record: dict[str, Any], count: int) -> None:
    """Registers `count` more instances in each Cloud Map service of the task set."""
    cluster_name = task_set.cluster.split("/")[-1]
    service_name = task_set.service.split("/")[-1]
    family = task_set.task_definition.split("/")[-1].split(":")[0]
    healthy = record.get("plan") is None or record["plan"].mode == "healthy"
    for reg in task_set.service_registries or []:
        arn = reg.get("registryArn")
        if not arn:
            continue
        account, region, service_id = _registry_target(arn)
        sd = servicediscovery_backends[account][region]
        for _ in range(count):
            instance_id = uuid.uuid4().hex
            attrs = {
                "AWS_INSTANCE_IPV4": _next_ip(),
                "AVAILABILITY_ZONE": f"{region}a",
                "REGION": region,
                "ECS_CLUSTER_NAME": cluster_name,
                "ECS_SERVICE_NAME": service_name,
                "ECS_TASK_DEFINITION_FAMILY": family,
                "AWS_INIT_HEALTH_STATUS": "HEALTHY" if healthy else "UNHEALTHY",
            }
            if task_set.external_id:
                attrs["ECS_TASK_SET_EXTERNAL_ID"] = task_set.external_id
            if reg.get("port"):
                attrs["AWS_INSTANCE_PORT"] = str(reg["port"])
            sd.register_instance(service_id, instance_id, str(uuid.uuid4()), attrs)
            record["instances"].append((account, region, service_id, instance_id))


def _deregister(record: dict[str, Any], keep: int | None = None) -> None:
    """Deregisters instances (all, or all but `keep` per Cloud Map service)."""
    by_service: dict[tuple[str, str, str], list[str]] = {}
    for account, region, service_id, instance_id in record["instances"]:
        by_service.setdefault((account, region, service_id), []).append(instance_id)
    remaining = []
    for (account, region, service_id), ids in by_service.items():
        stay = ids[:keep] if keep is not None else []
        for instance_id in ids[len(stay) :]:
            try:
                servicediscovery_backends[account][region].deregister_instance(service_id, instance_id)
            except Exception:  # noqa: BLE001 - already gone
                pass
        remaining.extend((account, region, service_id, i) for i in stay)
    record["instances"] = remaining


def _plan_for(task_set: Any) -> HealthPlan:
    with STATE.lock:
        for key in (task_set.external_id, task_set.id, task_set.task_set_arn):
            if key and key in STATE.health_plans:
                return STATE.health_plans[key]
        if STATE.next_health_plans:
            return STATE.next_health_plans.pop(0)
    return HealthPlan("healthy")


def _patched_create_task_set(self: Any, service: str, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
    try:
        cluster_name = self._get_cluster(cluster_str).name
        svc = self.services.get(f"{cluster_name}:{service.split('/')[-1]}")
    except Exception:  # noqa: BLE001 - the original call raises the proper error
        svc = None
    before = list(svc.task_sets) if svc is not None else []
    try:
        task_set = _original_create_task_set(self, service, cluster_str, *args, **kwargs)
    except Exception:
        if svc is not None:
            svc.task_sets[:] = [ts for ts in svc.task_sets if any(ts is b for b in before)]
        raise
    with STATE.lock:
        desired = computed_desired_count(self, task_set)
        record: dict[str, Any] = {"taskSet": task_set, "desired": desired, "instances": [], "timers": []}
        plan = _plan_for(task_set)
        record["plan"] = plan
        try:
            _register(task_set, record, desired)
        except Exception:
            _deregister(record)
            if svc is not None:
                svc.task_sets[:] = [ts for ts in svc.task_sets if ts is not task_set]
            raise
        STATE.task_set_instances[task_set.task_set_arn] = record
        _apply_plan(record, plan)
    return task_set


def _patched_update_task_set(self: Any, cluster: str, service: str, task_set: str, scale: dict[str, Any]) -> Any:
    ts = _original_update_task_set(self, cluster, service, task_set, scale)
    with STATE.lock:
        record = STATE.task_set_instances.get(ts.task_set_arn)
        if record is not None:
            desired = computed_desired_count(self, ts)
            registries = len({(a, r, s) for a, r, s, _ in record["instances"]}) or 1
            have = len(record["instances"]) // registries
            if desired > have:
                _register(ts, record, desired - have)
            elif desired < have:
                _deregister(record, keep=desired)
            record["desired"] = desired
            _apply_plan(record, record.get("plan") or HealthPlan("healthy"))
    return ts


def _patched_delete_task_set(self: Any, cluster: str, service: str, task_set: str) -> Any:
    ts = _original_delete_task_set(self, cluster, service, task_set)
    with STATE.lock:
        record = STATE.task_set_instances.pop(ts.task_set_arn, None)
        if record is not None:
            for t in record.get("timers", []):
                t.cancel()
            _deregister(record)
            _set_counts(ts, record["desired"], 0, 0, True)
        # AWS answers DeleteTaskSet with the task set in DRAINING.
        ts.status = "DRAINING"
    return ts


def set_health_plan(plan: HealthPlan, selector: str | None) -> list[str]:
    """Sets a plan for the task set `selector` (externalId, id or ARN), or for
    the next task set created when `selector` is None. Returns the ARNs of
    existing task sets it was applied to."""
    applied = []
    with STATE.lock:
        if selector is None:
            STATE.next_health_plans.append(plan)
            return applied
        STATE.health_plans[selector] = plan
        for arn, record in STATE.task_set_instances.items():
            ts = record["taskSet"]
            if selector in (ts.external_id, ts.id, ts.task_set_arn):
                _apply_plan(record, plan)
                applied.append(arn)
    return applied


def describe() -> list[dict[str, Any]]:
    with STATE.lock:
        out = []
        for arn, record in STATE.task_set_instances.items():
            ts = record["taskSet"]
            out.append(
                {
                    "taskSetArn": arn,
                    "id": ts.id,
                    "externalId": ts.external_id,
                    "computedDesiredCount": record["desired"],
                    "instances": [
                        {"serviceId": s, "instanceId": i} for _a, _r, s, i in record["instances"]
                    ],
                    "plan": (record.get("plan") or HealthPlan()).to_json(),
                    "stabilityStatus": ts.stabilityStatus,
                }
            )
        return out


_original_create_task_set: Any = None
_original_update_task_set: Any = None
_original_delete_task_set: Any = None


def apply() -> None:
    # Originals are taken at apply time so patches of the same method chain.
    global _original_create_task_set, _original_update_task_set, _original_delete_task_set
    backend = ecs_models.EC2ContainerServiceBackend
    _original_create_task_set = backend.create_task_set
    _original_update_task_set = backend.update_task_set
    _original_delete_task_set = backend.delete_task_set
    ecs_models.EC2ContainerServiceBackend.create_task_set = _patched_create_task_set
    ecs_models.EC2ContainerServiceBackend.update_task_set = _patched_update_task_set
    ecs_models.EC2ContainerServiceBackend.delete_task_set = _patched_delete_task_set
