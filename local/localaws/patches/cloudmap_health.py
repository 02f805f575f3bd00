"""Cloud Map: the health of instances of a service without a health check.

moto reports every instance HEALTHY. AWS Cloud Map API Reference,
GetInstancesHealthStatus: the status is `UNKNOWN` when the service has no
health check configuration (neither HealthCheckConfig nor
HealthCheckCustomConfig). AWS Cloud Map Developer Guide, "service health
check configuration": "If you don't configure a health check during service
creation, traffic will be routed to service instances regardless of the
instances' health status", so DiscoverInstances ignores its HealthStatus
filter there and returns every instance. With HealthCheckCustomConfig the status is what the ECS scheduler
stand-in reports (the task's container health check).

Switched by the ECS realism setting `unknownHealth` (on by default).
The instances' internal `health_status` stays HEALTHY for such services, so
whatever reads it directly (DNS answers, the Route 53 change recorder)
routes to them, as Cloud Map's DNS does."""

from __future__ import annotations

import json
from typing import Any

from moto.servicediscovery import models as sd_models
from moto.servicediscovery import responses as sd_responses


def _no_health_check(svc: Any) -> bool:
    return not getattr(svc, "health_check_config", None) and not getattr(svc, "health_check_custom_config", None)


def _enabled() -> bool:
    from .ecs_scheduler import REALISM

    return REALISM.unknown_health


def _patched_get_instances_health_status(self: Any, service_id: str, instances: list[str] | None = None) -> list[tuple[str, str]]:
    out = _original_get_health(self, service_id, instances)
    if _enabled() and _no_health_check(self.get_service(service_id)):
        return [(instance_id, "UNKNOWN") for instance_id, _status in out]
    return out


def _patched_discover_instances(self: Any, namespace_name: str, service_name: str, *args: Any, **kwargs: Any) -> Any:
    if _enabled():
        svc = _find(self, namespace_name, service_name)
        if svc is not None and _no_health_check(svc):
            kwargs["health_status"] = "ALL"
            if len(args) >= 3:
                args = (*args[:2], "ALL", *args[3:])
    return _original_discover(self, namespace_name, service_name, *args, **kwargs)


def _find(backend: Any, namespace_name: str, service_name: str) -> Any:
    ns = next((n for n in backend.list_namespaces() if n.name == namespace_name), None)
    if ns is None:
        return None
    return next((s for s in backend.list_services() if s.name == service_name and s.namespace_id == ns.id), None)


def _patched_discover_response(self: Any) -> str:
    raw = _original_discover_response(self)
    if not _enabled():
        return raw
    params = json.loads(self.body)
    svc = _find(self.servicediscovery_backend, params.get("NamespaceName"), params.get("ServiceName"))
    if svc is None or not _no_health_check(svc):
        return raw
    doc = json.loads(raw)
    for inst in doc.get("Instances", []):
        inst["HealthStatus"] = "UNKNOWN"
    return json.dumps(doc)


_original_get_health: Any = None
_original_discover: Any = None
_original_discover_response: Any = None


def apply() -> None:
    global _original_get_health, _original_discover, _original_discover_response
    backend = sd_models.ServiceDiscoveryBackend
    _original_get_health = backend.get_instances_health_status
    _original_discover = backend.discover_instances
    backend.get_instances_health_status = _patched_get_instances_health_status  # type: ignore[method-assign]  # patches moto's method
    backend.discover_instances = _patched_discover_instances  # type: ignore[method-assign]  # patches moto's method
    resp = sd_responses.ServiceDiscoveryResponse
    _original_discover_response = resp.discover_instances
    resp.discover_instances = _patched_discover_response  # type: ignore[method-assign]  # patches moto's method
