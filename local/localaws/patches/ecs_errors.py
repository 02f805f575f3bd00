"""ECS: the error names AWS uses for a missing task set or service.

moto answered a missing task set with the generic `ClientException` (AWS:
`TaskSetNotFoundException`, which a retried DeleteTaskSet must recognise),
and DeleteTaskSet on an unknown cluster/service with an HTTP 500 (a
KeyError; AWS: `ServiceNotFoundException` / `ClusterNotFoundException`)."""

from __future__ import annotations

from typing import Any

from moto.ecs import exceptions as ecs_exceptions
from moto.ecs import models as ecs_models


def _task_set_not_found_init(self: Any) -> None:
    ecs_exceptions.ECSException.__init__(
        self,
        "TaskSetNotFoundException",
        "The specified task set wasn't found. You can view your available task sets with DescribeTaskSets.",
    )


def _patched_delete_task_set(self: Any, cluster: str, service: str, task_set: str) -> Any:
    cluster_obj = self._get_cluster(cluster)  # ClusterNotFoundException
    if f"{cluster_obj.name}:{service.split('/')[-1]}" not in self.services:
        raise ecs_exceptions.ServiceNotFoundException
    return _original_delete_task_set(self, cluster, service, task_set)


_original_delete_task_set: Any = None


def apply() -> None:
    global _original_delete_task_set
    _original_delete_task_set = ecs_models.EC2ContainerServiceBackend.delete_task_set
    ecs_exceptions.TaskSetNotFoundException.__init__ = _task_set_not_found_init  # type: ignore[method-assign]  # patches moto's method
    ecs_models.EC2ContainerServiceBackend.delete_task_set = _patched_delete_task_set  # type: ignore[method-assign]  # patches moto's method
