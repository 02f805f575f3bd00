"""Records every successful Route 53 ChangeResourceRecordSets with the full
state of the changed names right after the change: every record of the name
(both weighted CNAMEs of a service: set identifier, weight, TTL, target) and,
for each record, how many instances the Cloud Map service it points at had,
and how many were healthy, at that moment. Tests check invariants over every
change a run made (never all-zero, never weight on a slot without healthy
instances), not only the end state.

The CNAME target `service-blue.ns-2` is resolved to the Cloud Map service
named `service-blue` in the namespace named `ns-2` (the names the bootstrap
creates); a target that matches no Cloud Map service is recorded with
`cloudMapService: null`.

Each entry also carries `changeId`, `submittedAt` and `visibleAt`: the id
GetChange knows the change by and when the local DNS server starts
answering with it (the Route 53 propagation setting, dns_server.py)."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from typing import Any

from . import config
from .state import STATE, now_iso

ZONE_PATH = re.compile(r"/2013-04-01/hostedzone/([^/]+)/rrset/?$")


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def parse_changes(body: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return out
    for change in root.iter():
        if not change.tag.endswith("}Change") and change.tag != "Change":
            continue
        entry: dict[str, Any] = {}
        for el in change:
            tag = el.tag.split("}")[-1]
            if tag == "Action":
                entry["action"] = (el.text or "").strip()
            elif tag == "ResourceRecordSet":
                for f in el:
                    ftag = f.tag.split("}")[-1]
                    if ftag == "Name":
                        entry["name"] = (f.text or "").strip()
                    elif ftag == "Type":
                        entry["type"] = (f.text or "").strip()
                    elif ftag == "SetIdentifier":
                        entry["setIdentifier"] = (f.text or "").strip()
                    elif ftag == "Weight":
                        entry["weight"] = int((f.text or "0").strip())
                    elif ftag == "TTL":
                        entry["ttl"] = int((f.text or "0").strip())
        out.append(entry)
    return out


def _cloud_map_health(target: str) -> dict[str, Any]:
    """Instances / healthy instances of the Cloud Map service a CNAME points at."""
    from moto.servicediscovery.models import servicediscovery_backends

    name = _norm(target)
    svc_name, _, ns_name = name.partition(".")
    for account in list(servicediscovery_backends.keys()):
        for region in list(servicediscovery_backends[account].keys()):
            backend = servicediscovery_backends[account][region]
            for svc in list(backend.services.values()):
                if svc.name.lower() != svc_name:
                    continue
                ns = backend.namespaces.get(svc.namespace_id)
                if ns is None or _norm(ns.name) != ns_name:
                    continue
                instances = list(svc.instances)
                return {
                    "cloudMapService": svc.name,
                    "cloudMapServiceId": svc.id,
                    "instances": len(instances),
                    "healthyInstances": sum(1 for i in instances if i.health_status == "HEALTHY"),
                }
    return {"cloudMapService": None, "cloudMapServiceId": None, "instances": 0, "healthyInstances": 0}


def snapshot(zone_id: str, names: set[str]) -> dict[str, list[dict[str, Any]]]:
    from moto.route53.models import route53_backends

    zone = route53_backends[config.ACCOUNT_ID]["global"].get_hosted_zone(zone_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for rr in list(zone.rrsets):
        if _norm(rr.name) not in names:
            continue
        values = [r if isinstance(r, str) else r.get("Value", "") for r in (rr.records or [])]
        entry: dict[str, Any] = {
            "type": rr.type,
            "setIdentifier": rr.set_identifier,
            "weight": int(rr.weight) if rr.weight is not None else None,
            "ttl": int(rr.ttl) if rr.ttl is not None else None,
            "values": values,
        }
        if rr.type == "CNAME" and values:
            entry.update(_cloud_map_health(values[0]))
        out.setdefault(_norm(rr.name), []).append(entry)
    for recs in out.values():
        recs.sort(key=lambda r: str(r.get("setIdentifier")))
    return out


def record_change(path: str, body: bytes, caller: str, call_seq: int | None = None) -> dict[str, Any] | None:
    m = ZONE_PATH.search(path)
    if not m:
        return None
    zone_id = m.group(1)
    changes = parse_changes(body)
    names = {_norm(c["name"]) for c in changes if c.get("name")}
    epoch = time.time()
    try:
        records = snapshot(zone_id, names)
    except Exception as e:  # noqa: BLE001 - recording must never break the call
        records = {"error": str(e)}  # type: ignore[dict-item]
    with STATE.lock:
        entry = {
            "seq": len(STATE.route53_changes) + 1,
            "callSeq": call_seq,
            "time": epoch,
            "timeIso": now_iso(epoch),
            "hostedZoneId": zone_id,
            "caller": caller,
            "changes": changes,
            "records": records,
        }
        # The change id ChangeResourceRecordSets answered and when the change
        # is (or was) visible in DNS (patches/dns_state.py; same thread).
        from .patches.dns_state import last_change

        made = last_change()
        if made is not None:
            entry.update(made)
        STATE.route53_changes.append(entry)
    return entry
