"""The `set-weight` handler written the way the closest prior art writes its
Lambda functions: Python with boto3, clients built once at import (module
level, as AWS recommends), one handler function.

It does what `canary_engine::handlers::set_weight` does: validate the input,
read both weighted CNAMEs, refuse to give weight to a slot whose Cloud Map
service has no healthy instance, write both weights in one batch, wait for
INSYNC, optionally mark a task set PRIMARY. It exists only as the Python side
of the init-time benchmark (bench/bench.py); the Rust function is the product.

Fair to Python on purpose: it builds only the three clients set-weight calls
(Route 53, Cloud Map, ECS), while every Rust function builds all five."""

from __future__ import annotations

import datetime
import os
import time

import boto3

ROUTE53 = boto3.client("route53")
CLOUDMAP = boto3.client("servicediscovery")
ECS = boto3.client("ecs")

INSYNC_POLL = int(os.environ.get("CANARY_INSYNC_POLL_MS", "2000")) / 1000.0
INSYNC_TIMEOUT = int(os.environ.get("CANARY_INSYNC_TIMEOUT_S", "120"))


class CanaryError(Exception):
    """`error_type` is the name the state machine's Retry/Catch match."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _same(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _weights_for(slot: str, percent: int) -> dict[str, int]:
    if not isinstance(percent, int) or not 0 <= percent <= 100:
        raise CanaryError("InvalidInput", f"percent must be 0..=100, got {percent}")
    rest = 100 - percent
    return {"blue": percent, "green": rest} if slot == "blue" else {"blue": rest, "green": percent}


def _read_records(target: dict) -> tuple[dict[str, int], int]:
    out = ROUTE53.list_resource_record_sets(
        HostedZoneId=target["hostedZoneId"],
        StartRecordName=target["recordName"],
        StartRecordType="CNAME",
        MaxItems="20",
    )
    named = [r for r in out["ResourceRecordSets"] if _same(r["Name"], target["recordName"])]
    weights, ttls = {}, []
    for slot in ("blue", "green"):
        cfg = target["slots"][slot]
        rec = next((r for r in named if r.get("SetIdentifier") == cfg["setIdentifier"]), None)
        if rec is None:
            raise CanaryError("TargetNotFound", f"no record {target['recordName']} ({cfg['setIdentifier']})")
        value = (rec.get("ResourceRecords") or [{}])[0].get("Value", "")
        if rec["Type"] != "CNAME" or not _same(value, cfg["dnsName"]) or "Weight" not in rec:
            raise CanaryError("TargetMisconfigured", f"record {target['recordName']} ({cfg['setIdentifier']})")
        weights[slot] = int(rec["Weight"])
        ttls.append(int(rec.get("TTL", 0)))
    if ttls[0] != ttls[1]:
        raise CanaryError("TargetMisconfigured", "the weighted records have different TTLs")
    return weights, ttls[0]


def _healthy(registry_arn: str) -> int:
    service_id = registry_arn.rsplit("/", 1)[-1]
    ids = [i["Id"] for page in CLOUDMAP.get_paginator("list_instances").paginate(ServiceId=service_id) for i in page["Instances"]]
    if not ids:
        return 0
    status: dict[str, str] = {}
    token = None
    while True:
        kw = {"ServiceId": service_id, **({"NextToken": token} if token else {})}
        out = CLOUDMAP.get_instances_health_status(**kw)
        status.update(out.get("Status", {}))
        token = out.get("NextToken")
        if not token:
            break
    return sum(1 for i in ids if status.get(i, "HEALTHY") == "HEALTHY")


def _run(event: dict) -> dict:
    try:
        target, slot, percent = event["target"], event["slot"], event["percent"]
    except (KeyError, TypeError) as e:
        raise CanaryError("InvalidInput", f"missing field {e}") from e
    if slot not in ("blue", "green"):
        raise CanaryError("InvalidInput", f"unknown slot {slot!r}")
    desired = _weights_for(slot, percent)
    primary = None
    if event.get("markPrimary"):
        arn = event["markPrimary"]["arn"]
        sets = ECS.describe_task_sets(cluster=target["cluster"], service=target["service"], taskSets=[arn])["taskSets"]
        if not sets:
            raise CanaryError("TaskSetNotFound", f"task set {arn} does not exist")
        primary = sets[0]
    current, ttl = _read_records(target)
    ttl = event.get("ttlSeconds") or ttl
    report = {"weights": desired, "ttlSeconds": ttl, "changed": False, "insync": True}
    if current != desired:
        for s in ("blue", "green"):
            if desired[s] > 0 and _healthy(target["slots"][s]["registryArn"]) == 0:
                raise CanaryError("NoHealthyInstances", f"the {s} slot has no healthy instance")
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": target["recordName"],
                    "Type": "CNAME",
                    "SetIdentifier": target["slots"][s]["setIdentifier"],
                    "Weight": desired[s],
                    "TTL": ttl,
                    "ResourceRecords": [{"Value": target["slots"][s]["dnsName"]}],
                },
            }
            for s in ("blue", "green")
        ]
        info = ROUTE53.change_resource_record_sets(
            HostedZoneId=target["hostedZoneId"],
            ChangeBatch={"Comment": f"ecs-dns-canary: {slot} {percent}%", "Changes": changes},
        )["ChangeInfo"]
        started = time.monotonic()
        while ROUTE53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] != "INSYNC":
            if time.monotonic() - started + INSYNC_POLL > INSYNC_TIMEOUT:
                raise CanaryError("Retryable", f"change {info['Id']} not INSYNC")
            time.sleep(INSYNC_POLL)
        report.update(changed=True, changeId=info["Id"])
    if primary is not None:
        if primary["status"] != "PRIMARY":
            ECS.update_service_primary_task_set(
                cluster=target["cluster"], service=target["service"], primaryTaskSet=primary["taskSetArn"]
            )
        report["primaryTaskSet"] = primary["taskSetArn"]
    report["changedAt"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if event.get("label"):
        report["label"] = event["label"]
    return report


def handler(event: dict, context: object) -> dict:
    return _run(event)
