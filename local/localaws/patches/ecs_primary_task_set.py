"""ECS: UpdateServicePrimaryTaskSet with a task set id, not only a full ARN.

moto resolved the task set by id or ARN, but then marked PRIMARY only the
task set whose ARN equalled the argument: given an id, every task set of the
service ended up ACTIVE and none PRIMARY; an unknown task set was an HTTP
500. AWS accepts either form. The patched version marks the resolved task
set and answers TaskSetNotFoundException for an unknown one."""

from __future__ import annotations

from typing import Any

from moto.ecs import models as ecs_models


def _patched(self: Any, cluster: str, service: str, primary_task_set: str) -> Any:
    cluster_name = cluster.split("/")[-1]
    service_name = service.split("/")[-1]
    resolved = self.describe_task_sets(cluster_name, service_name, task_sets=[primary_task_set])
    if not resolved:
        # moto failed with an IndexError (HTTP 500) here.
        from moto.ecs.exceptions import TaskSetNotFoundException

        raise TaskSetNotFoundException()
    primary_task_set = resolved[0].task_set_arn
    return _original(self, cluster, service, primary_task_set)


_original: Any = None


def apply() -> None:
    global _original
    _original = ecs_models.EC2ContainerServiceBackend.update_service_primary_task_set
    ecs_models.EC2ContainerServiceBackend.update_service_primary_task_set = _patched  # type: ignore[method-assign]  # patches moto's method
