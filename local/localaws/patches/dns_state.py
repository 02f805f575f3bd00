"""Route 53 and Cloud Map: what the local DNS server (`dns_server.py`) needs
from moto, and the timing of real DNS.

- Every change to what DNS answers bumps the DNS view's generation, so the
  DNS server rebuilds its view on the next query: ChangeResourceRecordSets,
  Create/DeleteHostedZone, Cloud Map namespace and service changes,
  Register/DeregisterInstance, and every write of an instance's
  `health_status` (moto's UpdateInstanceCustomHealthStatus and the ECS
  scheduler stand-in both assign it; it becomes a property here), and a
  moto reset.
- moto answers every ChangeResourceRecordSets with the same change id
  (`/change/C2682N5HXP0BZ4`) and GetChange with INSYNC for any id. Here each
  change gets its own id; with a propagation delay set, the zone's DNS
  answers keep the records from before the change until it is visible, the
  change is PENDING until then and INSYNC after (Route 53 API Reference,
  GetChange), and an unknown id is `NoSuchChange` (404) as on AWS.
- RegisterInstance / DeregisterInstance are asynchronous on AWS (Cloud Map
  API Reference, RegisterInstance); with a delay set the instance enters (or
  leaves) the DNS answers that long after the call and GetOperation answers
  PENDING until then, SUCCESS after. The API (ListInstances,
  GetInstancesHealthStatus) sees the instance at once, as on AWS."""

from __future__ import annotations

import functools
import random
import string
import threading
import time
from typing import Any

from moto.route53 import models as r53_models
from moto.route53 import responses as r53_responses
from moto.route53.exceptions import Route53ClientError
from moto.servicediscovery import models as sd_models

from ..dns_server import PUBLISHER, PendingChange, _route53_snapshot

_local = threading.local()


class NoSuchChange(Route53ClientError):
    def __init__(self, change_id: str) -> None:
        super().__init__("NoSuchChange", f"A change with the specified change ID does not exist: {change_id}")


def last_change() -> dict[str, Any] | None:
    """The change made by the current thread's last ChangeResourceRecordSets
    (read by route53_recorder right after the call, in the same thread)."""
    return getattr(_local, "change", None)


def _new_change_id() -> str:
    return "C" + "".join(random.choices(string.ascii_uppercase + string.digits, k=20))


def _bumping(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            PUBLISHER.bump()

    wrapper.__localaws_dns__ = True  # type: ignore[attr-defined]
    return wrapper



def _change_resource_record_sets(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> Any:
        zone = self.get_hosted_zone(zoneid)
        before = _route53_snapshot(zone)
        _local.change = None
        result = original(self, zoneid, change_list)
        now = time.time()
        change_id = _new_change_id()
        key = (self.account_id, zone.resource_id)
        with PUBLISHER.lock:
            visible_at = now + PUBLISHER.route53_delay()
            # Route 53 applies a zone's changes in order: never visible before an earlier one.
            for pending in PUBLISHER.pending_changes:
                if pending.zone_key == key:
                    visible_at = max(visible_at, pending.visible_at)
            PUBLISHER.changes[change_id] = (now, visible_at)
            if visible_at > now:
                PUBLISHER.pending_changes.append(PendingChange(change_id, key, now, visible_at, before))
            PUBLISHER.generation += 1
        _local.change = {"changeId": change_id, "submittedAt": now, "visibleAt": visible_at}
        return result

    wrapper.__localaws_dns__ = True  # type: ignore[attr-defined]
    return wrapper


def _change_response(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any) -> Any:
        from moto.core.responses import ActionResult

        result = original(self)
        change = last_change()
        if change is None:
            return result
        info = dict(result.result["ChangeInfo"])
        info["Id"] = f"/change/{change['changeId']}"
        info["Status"] = "INSYNC" if time.time() >= change["visibleAt"] else "PENDING"
        return ActionResult({"ChangeInfo": info})

    return wrapper


def _get_change(self: Any) -> Any:
    from datetime import datetime, timezone

    from moto.core.responses import ActionResult

    from ..dns_server import change_status, change_times

    change_id = str(self._get_param("Id") or "")
    status = change_status(change_id)
    times = change_times(change_id)
    if status is None or times is None:
        raise NoSuchChange(change_id)
    return ActionResult(
        {
            "ChangeInfo": {
                "Id": f"/change/{change_id.rsplit('/', 1)[-1]}",
                "Status": status,
                "SubmittedAt": datetime.fromtimestamp(times[0], tz=timezone.utc),
            }
        }
    )


def _instance_delay() -> float:
    with PUBLISHER.lock:
        return PUBLISHER.settings.cloudmap_dns_delay_s


def _register_instance(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, service_id: str, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        op_id = original(self, service_id, instance_id, *args, **kwargs)
        delay = _instance_delay()
        key = (service_id, instance_id)
        with PUBLISHER.lock:
            # Registered again while its deregistration was pending: it never leaves DNS.
            was_leaving = PUBLISHER.pending_deregister.pop(key, None) is not None
            if delay > 0 and not was_leaving:
                visible_at = time.time() + delay
                PUBLISHER.pending_register[key] = visible_at
                _mark_operation(self, op_id, visible_at)
            PUBLISHER.generation += 1
        return op_id

    wrapper.__localaws_dns__ = True  # type: ignore[attr-defined]
    return wrapper


def _deregister_instance(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, service_id: str, instance_id: str) -> Any:
        inst = None
        try:
            inst = next((i for i in self.get_service(service_id).instances if i.instance_id == instance_id), None)
        except Exception:  # noqa: BLE001 - the original call raises the proper error
            inst = None
        op_id = original(self, service_id, instance_id)
        delay = _instance_delay()
        key = (service_id, instance_id)
        with PUBLISHER.lock:
            was_pending = PUBLISHER.pending_register.pop(key, None) is not None
            if delay > 0 and inst is not None and not was_pending:
                visible_at = time.time() + delay
                PUBLISHER.pending_deregister[key] = (visible_at, inst)
                _mark_operation(self, op_id, visible_at)
            PUBLISHER.generation += 1
        return op_id

    wrapper.__localaws_dns__ = True  # type: ignore[attr-defined]
    return wrapper


def _mark_operation(backend: Any, op_id: str, visible_at: float) -> None:
    op = backend.operations.get(op_id)
    if op is not None:
        op.status = "PENDING"
        PUBLISHER.operations[op_id] = visible_at


def _get_operation(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, operation_id: str) -> Any:
        op = original(self, operation_id)
        with PUBLISHER.lock:
            visible_at = PUBLISHER.operations.get(operation_id)
        if visible_at is not None and time.time() >= visible_at and op.status == "PENDING":
            op.status = "SUCCESS"
            op.updated = time.time()
        return op

    return wrapper


def _health_get(self: Any) -> str:
    return self.__dict__.get("_localaws_health_status", "HEALTHY")


def _health_set(self: Any, value: str) -> None:
    self.__dict__["_localaws_health_status"] = value
    PUBLISHER.bump()


_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    backend = r53_models.Route53Backend
    backend.change_resource_record_sets = _change_resource_record_sets(backend.change_resource_record_sets)  # type: ignore[method-assign]
    for name in ("create_hosted_zone", "delete_hosted_zone"):
        setattr(backend, name, _bumping(getattr(backend, name)))
    resp = r53_responses.Route53
    resp.change_resource_record_sets = _change_response(resp.change_resource_record_sets)  # type: ignore[method-assign]
    resp.get_change = _get_change  # type: ignore[method-assign]

    sd = sd_models.ServiceDiscoveryBackend
    sd.register_instance = _register_instance(sd.register_instance)  # type: ignore[method-assign]
    sd.deregister_instance = _deregister_instance(sd.deregister_instance)  # type: ignore[method-assign]
    sd.get_operation = _get_operation(sd.get_operation)  # type: ignore[method-assign]
    for name in (
        "create_private_dns_namespace",
        "create_public_dns_namespace",
        "delete_namespace",
        "update_private_dns_namespace",
        "update_public_dns_namespace",
        "create_service",
        "delete_service",
        "update_service",
        "update_instance_custom_health_status",
    ):
        if hasattr(sd, name):
            setattr(sd, name, _bumping(getattr(sd, name)))
    sd_models.ServiceInstance.health_status = property(_health_get, _health_set)  # type: ignore[assignment]  # a property over moto's plain attribute
    # A moto reset (POST /moto-api/reset or the control API's reset) empties every zone.
    from moto.moto_api._internal import models as api_models

    api_models.MotoAPIBackend.reset = _bumping(api_models.MotoAPIBackend.reset)  # type: ignore[method-assign]
    _applied = True
