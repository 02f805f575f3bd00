"""ECS: a stand-in for the scheduler, so task sets get tasks that serve.

moto starts no tasks and registers nothing in Cloud Map; its task sets are
`STEADY_STATE` from birth and have no counts. This module plays the ECS
scheduler for task sets (EXTERNAL deployment controller):

- CreateTaskSet: `computedDesiredCount` tasks (service `desiredCount` x
  `scale` percent, rounded up as ECS does, at least 1). Each task goes
  PROVISIONING -> RUNNING after the realism setting `taskStartSeconds`
  (ECS Developer Guide, "Amazon ECS task lifecycle": PROVISIONING,
  PENDING, ACTIVATING, RUNNING). When it runs, its HTTP server starts
  (`localaws.tasks`: its own address 127.x.y.z on the task port, answering
  with its image), its container health check runs (`GET /health`) and it is
  registered in every Cloud Map service of the task set's
  `serviceRegistries`, under the task id, with the attributes ECS sets
  (`AWS_INSTANCE_IPV4`, `AWS_INSTANCE_PORT`, `ECS_TASK_SET_EXTERNAL_ID`,
  `ECS_CLUSTER_NAME`, `ECS_SERVICE_NAME`, `ECS_TASK_DEFINITION_FAMILY`,
  `AVAILABILITY_ZONE`, `REGION`, `AWS_INIT_HEALTH_STATUS`). For a Cloud
  Map service with HealthCheckCustomConfig the instance's health is the
  task's health as ECS reports it (the container health check).
  `runningCount`, `pendingCount`, `computedDesiredCount` and
  `stabilityStatus` follow: STABILIZING until every task runs and passes
  its health check, then STEADY_STATE (ECS API Reference, TaskSet,
  stabilityStatus). The call is also made atomic (moto appended the task
  set before starting its tasks, so a failure there left it behind).
- CreateTaskSet refusals (realism setting `createTaskSetChecks`):
  launchType together with capacityProviderStrategy (ECS API Reference,
  CreateTaskSet: "If a capacityProviderStrategy is specified, the launchType
  parameter must be omitted"), and a sixth task set on a service, DRAINING
  ones included (ECS service quotas: task sets per service, 5), both
  InvalidParameterException with the messages ECS gives.
- UpdateTaskSet (scale): starts or stops tasks to match.
- DeleteTaskSet: the task set answers DRAINING, its tasks stop, and it is
  gone from DescribeServices / DescribeTaskSets once they stopped (plus the
  realism setting `taskStopSeconds`, the DEPROVISIONING time).
- A task stops as ECS stops one (ECS Developer Guide, "Amazon ECS task
  lifecycle": DEACTIVATING deregisters the task from service discovery,
  then STOPPING sends SIGTERM; ECS API Reference, StopTask /
  ContainerDefinition.stopTimeout: SIGKILL after the stop timeout, 30 s by
  default): it is deregistered from Cloud Map first, then its server stops
  gracefully (`TaskServer.stop`) with the container's `stopTimeout`, or the
  realism setting `stopTimeoutSeconds`.
- Read lag (realism setting `readLagMs`; ECS API Reference, RunTask: "The
  Amazon ECS API follows an eventual consistency model ... the result of an
  API command you run that affects your Amazon ECS resources might not be
  immediately visible to all subsequent commands"): a task set just created is missing from
  DescribeServices' `taskSets`, and DescribeTaskSets answers it in
  `failures` with reason MISSING, for that long. Any unknown task set
  asked for by DescribeTaskSets is a MISSING failure, as in AWS.
- Health plans (control `/_localaws/task-set-health`, kept for the e2e and
  reliability suites) map onto this model: `healthy` (the image decides,
  the default), `unhealthy` (the tasks' container health check fails
  whatever the image does: running, UNHEALTHY in Cloud Map, STABILIZING),
  `slow` (the tasks take `delaySeconds` to reach RUNNING).

Not emulated: ECS replacing a task whose health check fails (it stays
RUNNING and unhealthy); DescribeTasks / ListTasks for these tasks.

Lock order everywhere: MOTO_LOCK, then STATE.lock. Task servers' handler
threads take neither."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.servicediscovery.models import servicediscovery_backends

from .. import tasks as task_servers
from ..state import MOTO_LOCK, STATE, HealthPlan

LOG = logging.getLogger("localaws.ecs_scheduler")

MAX_TASK_SETS_PER_SERVICE = 5


# ------------------------------------------------------------------ realism settings


@dataclass
class EcsRealism:
    """ECS and Cloud Map behaviours that cost time or refuse calls. The
    defaults are fast (for `make test`); local/README.md ("Realistic mode")
    gives a realistic value for each and the AWS document behind it."""

    # PROVISIONING/PENDING -> RUNNING (realistic: 30-60 s on Fargate).
    task_start_seconds: float = 0.0
    # After a task's container exited until it is STOPPED and a DRAINING
    # task set disappears (DEPROVISIONING; realistic: about 30 s).
    task_stop_seconds: float = 0.0
    # SIGTERM -> SIGKILL when the container sets no stopTimeout (ECS: 30 s).
    stop_timeout_seconds: float = 30.0
    # How long a new task set is invisible to DescribeServices/DescribeTaskSets.
    read_lag_ms: float = 0.0
    # GetInstancesHealthStatus answers UNKNOWN for services without a health
    # check configuration, and DiscoverInstances ignores the health filter.
    unknown_health: bool = True
    # launchType + capacityProviderStrategy, and the 5 task sets quota.
    create_task_set_checks: bool = True

    _NAMES = {
        "taskStartSeconds": "task_start_seconds",
        "taskStopSeconds": "task_stop_seconds",
        "stopTimeoutSeconds": "stop_timeout_seconds",
        "readLagMs": "read_lag_ms",
        "unknownHealth": "unknown_health",
        "createTaskSetChecks": "create_task_set_checks",
    }

    def to_json(self) -> dict[str, Any]:
        return {camel: getattr(self, attr) for camel, attr in self._NAMES.items()}

    def update(self, doc: dict[str, Any]) -> None:
        unknown = set(doc) - set(self._NAMES)
        if unknown:
            raise ValueError(f"unknown ECS realism settings {sorted(unknown)}; known: {sorted(self._NAMES)}")
        for camel, value in doc.items():
            if value is None:
                continue
            attr = self._NAMES[camel]
            if isinstance(getattr(self, attr), bool):
                setattr(self, attr, bool(value))
            else:
                number = float(value)
                if not 0 <= number <= 3600 * 1000:
                    raise ValueError(f"{camel} must be >= 0")
                setattr(self, attr, number)


REALISM = EcsRealism()


def _reset_realism() -> None:
    for f in fields(EcsRealism):
        if not f.name.startswith("_"):
            setattr(REALISM, f.name, f.default)


# ------------------------------------------------------------------ helpers


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


def _container_of(backend: Any, task_set: Any) -> dict[str, Any]:
    """The container that serves: the one named in serviceRegistries, else
    the task definition's first."""
    try:
        td = backend.describe_task_definition(task_set.task_definition)
        containers = list(td.container_definitions or [])
    except Exception:  # noqa: BLE001 - no task definition: an unnamed image
        return {}
    wanted = next((r.get("containerName") for r in task_set.service_registries or [] if r.get("containerName")), None)
    for c in containers:
        if wanted and c.get("name") == wanted:
            return c
    return containers[0] if containers else {}


def _custom_health(service_id: str, account: str, region: str) -> bool:
    try:
        svc = servicediscovery_backends[account][region].get_service(service_id)
    except Exception:  # noqa: BLE001
        return False
    return bool(svc.health_check_custom_config)


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


# ------------------------------------------------------------------ tasks


@dataclass
class Task:
    task_id: str
    status: str = "PROVISIONING"  # PROVISIONING -> RUNNING -> DEACTIVATING -> STOPPING -> STOPPED
    server: task_servers.TaskServer | None = None
    healthy: bool | None = None
    # (account, region, Cloud Map service id) it is registered in
    registrations: list[tuple[str, str, str]] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"taskId": self.task_id, "lastStatus": self.status, "healthy": self.healthy}
        if self.server is not None:
            doc.update(self.server.to_json())
        return doc


def _new_record(backend: Any, task_set: Any, plan: HealthPlan) -> dict[str, Any]:
    container = _container_of(backend, task_set)
    return {
        "taskSet": task_set,
        "backend": backend,
        "desired": 0,
        "tasks": [],
        "stopping": [],
        "timers": [],
        "plan": plan,
        "image": container.get("image") or "unknown:latest",
        "stopTimeout": container.get("stopTimeout"),
        "visibleAt": time.time() + REALISM.read_lag_ms / 1000.0,
        "draining": False,
    }


def _start_delay(record: dict[str, Any]) -> float:
    plan = record.get("plan") or HealthPlan()
    if plan.mode == "slow":
        return max(0.0, plan.delay_seconds)
    return REALISM.task_start_seconds


def _refresh_counts(record: dict[str, Any]) -> None:
    tasks = record["tasks"]
    running = [t for t in tasks if t.status == "RUNNING"]
    pending = [t for t in tasks if t.status in ("PROVISIONING", "PENDING")]
    steady = (
        not record["draining"]
        and len(running) == record["desired"]
        and not pending
        and all(t.healthy for t in running)
    )
    _set_counts(record["taskSet"], 0 if record["draining"] else record["desired"], len(running), len(pending), steady)


def _set_instance_health(task: Task, healthy: bool) -> None:
    for account, region, service_id in task.registrations or []:
        if not _custom_health(service_id, account, region):
            # No health check configured: Cloud Map keeps routing to it
            # (and reports UNKNOWN, see cloudmap_health below).
            continue
        try:
            svc = servicediscovery_backends[account][region].get_service(service_id)
        except Exception:  # noqa: BLE001 - the Cloud Map service is gone
            continue
        for inst in svc.instances:
            if inst.instance_id == task.task_id:
                inst.health_status = "HEALTHY" if healthy else "UNHEALTHY"


def _run_task(record: dict[str, Any], task: Task) -> None:
    """PENDING -> RUNNING: the server starts, the health check runs, the task
    is registered in Cloud Map. Caller holds MOTO_LOCK and STATE.lock."""
    ts = record["taskSet"]
    plan = record.get("plan") or HealthPlan()
    task.server = task_servers.NETWORK.serve_task(task.task_id, ts.id, ts.external_id, record["image"])
    task.server.health_override = "fail" if plan.mode == "unhealthy" else None
    task.status = "RUNNING"
    task.healthy = task.server.check_health()
    cluster_name = ts.cluster.split("/")[-1]
    service_name = ts.service.split("/")[-1]
    family = ts.task_definition.split("/")[-1].split(":")[0]
    task.registrations = []
    for reg in ts.service_registries or []:
        arn = reg.get("registryArn")
        if not arn:
            continue
        account, region, service_id = _registry_target(arn)
        custom = _custom_health(service_id, account, region)
        attrs = {
            "AWS_INSTANCE_IPV4": task.server.address,
            "AWS_INSTANCE_PORT": str(task.server.port),
            "AVAILABILITY_ZONE": f"{region}a",
            "REGION": region,
            "ECS_CLUSTER_NAME": cluster_name,
            "ECS_SERVICE_NAME": service_name,
            "ECS_TASK_DEFINITION_FAMILY": family,
            "AWS_INIT_HEALTH_STATUS": "HEALTHY" if (task.healthy or not custom) else "UNHEALTHY",
        }
        if ts.external_id:
            attrs["ECS_TASK_SET_EXTERNAL_ID"] = ts.external_id
        servicediscovery_backends[account][region].register_instance(service_id, task.task_id, str(uuid.uuid4()), attrs)
        task.registrations.append((account, region, service_id))
        _set_instance_health(task, bool(task.healthy))


def _deregister(task: Task) -> None:
    for account, region, service_id in task.registrations or []:
        try:
            servicediscovery_backends[account][region].deregister_instance(service_id, task.task_id)
        except Exception:  # noqa: BLE001 - already gone (or the backend was reset)
            pass
    task.registrations = []


def _stop_timeout(record: dict[str, Any]) -> float:
    value = record.get("stopTimeout")
    try:
        return float(value) if value is not None else REALISM.stop_timeout_seconds
    except (TypeError, ValueError):
        return REALISM.stop_timeout_seconds


# Tasks that stopped since the last reset (newest last, bounded): what each
# served and when its stop was asked for and ended, so a test can check that
# no client request reached a task after it stopped (GET /_localaws/tasks
# "stopped"; aws.stopped_tasks()).
STOPPED_TASKS: collections.deque[dict[str, Any]] = collections.deque(maxlen=2000)


def _stop_tasks(record: dict[str, Any], victims: list[Task], then: Any = None) -> None:
    """DEACTIVATING (deregistered now, inside the API call), then STOPPING
    (graceful server stop) in a thread; `then()` runs under the locks when
    all have stopped. Caller holds MOTO_LOCK and STATE.lock."""
    asked = time.time()
    for task in victims:
        _deregister(task)
        task.status = "DEACTIVATING" if task.server is not None else "STOPPED"
        if task in record["tasks"]:
            record["tasks"].remove(task)
        record["stopping"].append(task)
    timeout = _stop_timeout(record)
    deprovision = REALISM.task_stop_seconds

    def stop_all() -> None:
        for task in victims:
            if task.server is not None:
                task.status = "STOPPING"
                task.server.stop(timeout)
                STOPPED_TASKS.append({**task.server.to_json(), "stopRequestedAt": asked,
                                      "taskSetArn": record["taskSet"].task_set_arn})
        if deprovision > 0:
            time.sleep(min(deprovision, 3600))
        with MOTO_LOCK, STATE.lock:
            for task in victims:
                task.status = "STOPPED"
                if task in record["stopping"]:
                    record["stopping"].remove(task)
            if then is not None:
                then()
            elif not record["draining"]:
                _refresh_counts(record)

    if not victims and then is None:
        return
    t = threading.Thread(target=stop_all, name="ecs-task-stop", daemon=True)
    t.start()


def _schedule_start(record: dict[str, Any], pending: list[Task]) -> None:
    """Tasks reach RUNNING after the start delay (at once when it is 0)."""
    delay = _start_delay(record)
    if delay <= 0:
        for task in pending:
            _run_task(record, task)
        return

    def run_them() -> None:
        with MOTO_LOCK, STATE.lock:
            if record["draining"] or STATE.task_set_instances.get(record["taskSet"].task_set_arn) is not record:
                return
            for task in pending:
                if task in record["tasks"] and task.status in ("PROVISIONING", "PENDING"):
                    _run_task(record, task)
            _refresh_counts(record)

    timer = threading.Timer(delay, run_them)
    timer.daemon = True
    record["timers"].append(timer)
    STATE.timers.append(timer)
    timer.start()


def _scale_to(record: dict[str, Any], desired: int) -> None:
    record["desired"] = desired
    tasks = record["tasks"]
    if desired > len(tasks):
        new = [Task(uuid.uuid4().hex) for _ in range(desired - len(tasks))]
        tasks.extend(new)
        for t in new:
            t.status = "PENDING" if _start_delay(record) <= 0 else "PROVISIONING"
        _schedule_start(record, new)
    elif desired < len(tasks):
        # ECS stops pending tasks before running ones, newest first.
        order = sorted(tasks, key=lambda t: (t.status == "RUNNING", -tasks.index(t)))
        _stop_tasks(record, order[: len(tasks) - desired])
    _refresh_counts(record)


def _apply_plan(record: dict[str, Any], plan: HealthPlan) -> None:
    if plan.mode not in ("healthy", "unhealthy", "slow"):
        raise ValueError(f"unknown health mode {plan.mode!r}: use healthy, unhealthy or slow")
    record["plan"] = plan
    for task in record["tasks"]:
        if task.server is not None:
            task.server.health_override = "fail" if plan.mode == "unhealthy" else None
    _recheck_health(record)
    pending = [t for t in record["tasks"] if t.status in ("PROVISIONING", "PENDING")]
    if pending:
        for timer in record["timers"]:
            timer.cancel()
        record["timers"] = []
        _schedule_start(record, pending)
    _refresh_counts(record)


def _recheck_health(record: dict[str, Any]) -> None:
    for task in record["tasks"]:
        if task.status == "RUNNING" and task.server is not None:
            healthy = task.server.check_health()
            if healthy != task.healthy:
                task.healthy = healthy
                _set_instance_health(task, healthy)


def recheck_all_health() -> None:
    """Runs every running task's health check again (after an image's
    behaviour changed). Caller holds MOTO_LOCK."""
    with STATE.lock:
        for record in STATE.task_set_instances.values():
            _recheck_health(record)
            if not record["draining"]:
                _refresh_counts(record)


def _plan_for(task_set: Any) -> HealthPlan:
    with STATE.lock:
        for key in (task_set.external_id, task_set.id, task_set.task_set_arn):
            if key and key in STATE.health_plans:
                return STATE.health_plans[key]
        if STATE.next_health_plans:
            return STATE.next_health_plans.pop(0)
    return HealthPlan("healthy")


# ------------------------------------------------------------------ patched backend methods


def _check_create(svc: Any, launch_type: Any, capacity_provider_strategy: Any) -> None:
    if not REALISM.create_task_set_checks:
        return
    if launch_type and capacity_provider_strategy:
        # ECS API Reference, CreateTaskSet (capacityProviderStrategy): "If a
        # capacityProviderStrategy is specified, the launchType parameter
        # must be omitted." The message is the one ECS answers.
        raise InvalidParameterException(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
        )
    if svc is not None and len(svc.task_sets) >= MAX_TASK_SETS_PER_SERVICE:
        # ECS service quotas: "Task sets per service: 5" (DRAINING ones
        # count: they stay in the service until their tasks stopped). The
        # message is the one ECS answers (seen in
        # aws-samples/ecs-bg-external-controller issue 6, pipe-cd/pipecd 4692).
        raise InvalidParameterException(
            f"{len(svc.task_sets)} deployments exist on the service. "
            "Unable to create new TaskSet since this exceeds the maximum limit."
        )


# task set ARN -> the clientToken it was created with (CreateTaskSet idempotency).
_CLIENT_TOKENS: dict[str, str] = {}


def _patched_create_task_set(self: Any, service: str, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
    try:
        cluster_name = self._get_cluster(cluster_str).name
        svc = self.services.get(f"{cluster_name}:{service.split('/')[-1]}")
    except Exception:  # noqa: BLE001 - the original call raises the proper error
        svc = None
    # ECS API Reference, CreateTaskSet `clientToken`: "An identifier that you
    # provide to ensure the idempotency of the request". A retry with the
    # token of a task set the service still has answers that task set and
    # starts nothing (moto 5.2.5 ignores the token and made a second one).
    token = kwargs.get("client_token")
    if token and svc is not None:
        for existing in svc.task_sets:
            if _CLIENT_TOKENS.get(existing.task_set_arn) == token and existing.status != "DRAINING":
                return existing
    _check_create(svc, kwargs.get("launch_type"), kwargs.get("capacity_provider_strategy"))
    before = list(svc.task_sets) if svc is not None else []
    try:
        task_set = _original_create_task_set(self, service, cluster_str, *args, **kwargs)
    except Exception:
        if svc is not None:
            svc.task_sets[:] = [ts for ts in svc.task_sets if any(ts is b for b in before)]
        raise
    if token:
        _CLIENT_TOKENS[task_set.task_set_arn] = token
    with STATE.lock:
        record = _new_record(self, task_set, _plan_for(task_set))
        STATE.task_set_instances[task_set.task_set_arn] = record
        try:
            _scale_to(record, computed_desired_count(self, task_set))
        except Exception:
            _stop_tasks(record, list(record["tasks"]))
            STATE.task_set_instances.pop(task_set.task_set_arn, None)
            if svc is not None:
                svc.task_sets[:] = [ts for ts in svc.task_sets if ts is not task_set]
            raise
    return task_set


def _patched_update_task_set(self: Any, cluster: str, service: str, task_set: str, scale: dict[str, Any]) -> Any:
    ts = _original_update_task_set(self, cluster, service, task_set, scale)
    with STATE.lock:
        record = STATE.task_set_instances.get(ts.task_set_arn)
        if record is not None and not record["draining"]:
            _scale_to(record, computed_desired_count(self, ts))
    return ts


def _patched_delete_task_set(self: Any, cluster: str, service: str, task_set: str) -> Any:
    cluster_obj = self._get_cluster(cluster)
    svc = self.services.get(f"{cluster_obj.name}:{service.split('/')[-1]}")
    ts = _original_delete_task_set(self, cluster, service, task_set)
    # AWS answers DeleteTaskSet with the task set in DRAINING, and it stays
    # in the service (and counts against the quota) until its tasks stopped.
    ts.status = "DRAINING"
    with STATE.lock:
        record = STATE.task_set_instances.get(ts.task_set_arn)
        if svc is not None and (record is not None and not _gone(record)):
            svc.task_sets.append(ts)
        if record is None or record["draining"]:
            return ts
        record["draining"] = True
        for timer in record["timers"]:
            timer.cancel()
        record["timers"] = []

        def gone() -> None:
            record["gone"] = True
            if svc is not None:
                svc.task_sets[:] = [x for x in svc.task_sets if x is not ts]
            if STATE.task_set_instances.get(ts.task_set_arn) is record:
                del STATE.task_set_instances[ts.task_set_arn]
            _set_counts(ts, 0, 0, 0, True)

        victims = list(record["tasks"])
        _refresh_counts(record)
        _stop_tasks(record, victims, then=gone)
    return ts


def _gone(record: dict[str, Any]) -> bool:
    return bool(record.get("gone"))


# ------------------------------------------------------------------ read lag (patched responses)


def _lagging() -> set[str]:
    now = time.time()
    with STATE.lock:
        return {arn for arn, r in STATE.task_set_instances.items() if r.get("visibleAt", 0) > now}


def _matches(ts: Any, ident: str) -> bool:
    return ident in (ts.task_set_arn, ts.id, "/".join(ts.task_set_arn.split("/")[-2:]))


def _describe_task_sets_response(self: Any) -> ActionResult:
    cluster_str = self._get_param("cluster", "default")
    service_str = self._get_param("service")
    wanted = self._get_param("taskSets", []) or []
    found = self.ecs_backend.describe_task_sets(cluster_str, service_str, wanted)
    hidden = _lagging()
    visible = [t for t in found if t.task_set_arn not in hidden]
    # ECS API Reference, DescribeTaskSets: task sets it cannot return are
    # listed in `failures` (reason MISSING), e.g. one just created.
    failures = [{"arn": ident, "reason": "MISSING"} for ident in wanted if not any(_matches(t, ident) for t in visible)]
    if "TAGS" in (self._get_param("include", []) or []):
        self._include_in_response(ecs_responses.DESCRIBE_TASK_SETS_TAGS)
    else:
        self._exclude_from_response(ecs_responses.DESCRIBE_TASK_SETS_TAGS)
    return ActionResult({"taskSets": visible, "failures": failures})


class Service:
    """A read-only view of a moto ECS service whose `task_sets` leaves out
    task sets not yet visible (named Service for moto's serializer)."""

    def __init__(self, svc: Any, task_sets: list[Any]) -> None:
        self.__dict__["_svc"] = svc
        self.__dict__["task_sets"] = task_sets

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_svc"], name)


def _describe_services_response(self: Any) -> Any:
    result = _original_describe_services_response(self)
    hidden = _lagging()
    if not hidden:
        return result
    doc = getattr(result, "result", None)
    if not isinstance(doc, dict) or "services" not in doc:
        return result
    doc["services"] = [
        Service(s, [t for t in s.task_sets if t.task_set_arn not in hidden]) if any(t.task_set_arn in hidden for t in s.task_sets) else s
        for s in doc["services"]
    ]
    return result


# ------------------------------------------------------------------ harness entry points


def set_health_plan(plan: HealthPlan, selector: str | None) -> list[str]:
    """Sets a plan for the task set `selector` (externalId, id or ARN), or for
    the next task set created when `selector` is None. Returns the ARNs of
    existing task sets it was applied to."""
    applied: list[str] = []
    with STATE.lock:
        if selector is None:
            STATE.next_health_plans.append(plan)
            return applied
        STATE.health_plans[selector] = plan
        for arn, record in STATE.task_set_instances.items():
            ts = record["taskSet"]
            if selector in (ts.external_id, ts.id, ts.task_set_arn) and not record["draining"]:
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
                    "status": ts.status,
                    "image": record["image"],
                    "computedDesiredCount": record["desired"],
                    "instances": [
                        {"serviceId": s, "instanceId": t.task_id, "address": t.server.address if t.server else None}
                        for t in record["tasks"]
                        for _a, _r, s in (t.registrations or [])
                    ],
                    "tasks": [t.to_json() for t in record["tasks"]],
                    "stoppingTasks": [t.to_json() for t in record["stopping"]],
                    "plan": (record.get("plan") or HealthPlan()).to_json(),
                    "stabilityStatus": ts.stabilityStatus,
                }
            )
        return out


def all_tasks() -> list[dict[str, Any]]:
    with STATE.lock:
        out = []
        for record in STATE.task_set_instances.values():
            ts = record["taskSet"]
            for t in record["tasks"] + record["stopping"]:
                out.append({**t.to_json(), "taskSetArn": ts.task_set_arn, "externalId": ts.external_id})
        return out


def stop_all(wait: bool = False, timeout: float = 5.0) -> None:
    """Stops every task (reset, server exit): deregistered first, then its
    server stops gracefully (bounded by `timeout`)."""
    with MOTO_LOCK, STATE.lock:
        records = list(STATE.task_set_instances.values())
        STATE.task_set_instances.clear()
        servers = []
        for record in records:
            record["draining"] = True
            for timer in record["timers"]:
                timer.cancel()
            for task in record["tasks"]:
                _deregister(task)
                if task.server is not None:
                    servers.append(task.server)
            record["tasks"] = []

    def stop_servers() -> None:
        # In parallel: the whole stop takes one stop timeout at most.
        threads = [threading.Thread(target=s.stop, args=(timeout,), daemon=True) for s in servers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout + 2.0
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    if wait:
        stop_servers()
    elif servers:
        threading.Thread(target=stop_servers, name="ecs-stop-all", daemon=True).start()


def reset() -> None:
    """aws.reset(): tasks stop, images and realism settings back to defaults."""
    stop_all(wait=False, timeout=2.0)
    STOPPED_TASKS.clear()
    _CLIENT_TOKENS.clear()
    task_servers.IMAGES.clear()
    _reset_realism()


def control_route(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """Control API routes of this module (None: not one of them).

    GET/POST /_localaws/images        {"image", "errorRate", "latencyMs", "healthCheck": "pass"|"fail"}
    GET/POST /_localaws/ecs-realism   {"taskStartSeconds", "taskStopSeconds", "stopTimeoutSeconds",
                                       "readLagMs", "unknownHealth", "createTaskSetChecks"}
    GET      /_localaws/tasks         every task with its address, image, status and health
    """
    if path == "/_localaws/images":
        if method == "POST":
            behaviour = task_servers.ImageBehaviour(
                error_rate=float(body.get("errorRate", 0.0)),
                latency_ms=float(body.get("latencyMs", 0.0)),
                health_check=str(body.get("healthCheck", "pass")),
            )
            task_servers.IMAGES.set(str(body.get("image") or ""), behaviour)
            recheck_all_health()
        return 200, {"images": task_servers.IMAGES.list()}
    if path == "/_localaws/ecs-realism":
        if method == "POST":
            REALISM.update(body)
        return 200, REALISM.to_json()
    if path == "/_localaws/tasks":
        return 200, {"port": task_servers.NETWORK.start(), "tasks": all_tasks(), "stopped": list(STOPPED_TASKS)}
    return None


_original_create_task_set: Any = None
_original_update_task_set: Any = None
_original_delete_task_set: Any = None
_original_describe_services_response: Any = None


def apply() -> None:
    # Originals are taken at apply time so patches of the same method chain.
    global _original_create_task_set, _original_update_task_set, _original_delete_task_set
    global _original_describe_services_response
    backend = ecs_models.EC2ContainerServiceBackend
    _original_create_task_set = backend.create_task_set
    _original_update_task_set = backend.update_task_set
    _original_delete_task_set = backend.delete_task_set
    backend.create_task_set = _patched_create_task_set  # type: ignore[method-assign]  # patches moto's method
    backend.update_task_set = _patched_update_task_set  # type: ignore[method-assign]  # patches moto's method
    backend.delete_task_set = _patched_delete_task_set  # type: ignore[method-assign]  # patches moto's method
    resp = ecs_responses.EC2ContainerServiceResponse
    _original_describe_services_response = resp.describe_services
    resp.describe_services = _describe_services_response  # type: ignore[method-assign]  # patches moto's method
    resp.describe_task_sets = _describe_task_sets_response  # type: ignore[method-assign]  # patches moto's method
    # Cloud Map's side of the same realism (UNKNOWN health without a health
    # check) lives in its own module; applied from here so the patch list in
    # patches/__init__.py stays as it is.
    from . import cloudmap_health

    cloudmap_health.apply()
