"""Fault injection in each protocol, the Route 53 rate limit and change log."""

from __future__ import annotations

import time

import cbor_client as cc
import pytest
from botocore.exceptions import ClientError
from no_retry import no_retry_client
from world import build

from localaws import LocalAws


def _code(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_nth_call_fails_with_the_protocols_throttling_error(aws: LocalAws) -> None:
    build(aws)
    ecs = no_retry_client(aws, "ecs")
    rule = aws.fail_next("ecs", "DescribeServices", "throttle", nth=2, caller="harness")
    ecs.describe_services(cluster="c1", services=["svc"])
    assert _code(lambda: ecs.describe_services(cluster="c1", services=["svc"])) == ("ThrottlingException", 400)
    ecs.describe_services(cluster="c1", services=["svc"])
    faults = aws.faults()
    assert faults[0]["id"] == rule["id"] and faults[0]["seen"] == 3 and len(faults[0]["fired"]) == 1
    failed = [c for c in aws.calls(service="ecs", operation="DescribeServices")]
    assert [c["status"] for c in failed] == [200, 400, 200]
    assert failed[1]["fault"]["kind"] == "throttle"


def test_route53_faults_use_the_rest_xml_error_shape(aws: LocalAws) -> None:
    w = build(aws)
    r53 = no_retry_client(aws, "route53")
    aws.fail_calls("route53", "ChangeResourceRecordSets", "throttle", first=1, last=2, caller="harness")
    assert _code(lambda: w.set_weights(100, 0, r53)) == ("Throttling", 400)
    aws.clear_faults()
    aws.fail_next("route53", "ChangeResourceRecordSets", "5xx", status=503, caller="harness")
    assert _code(lambda: w.set_weights(100, 0, r53)) == ("ServiceUnavailable", 503)
    aws.fail_next("route53", "*", "permanent", caller="harness")
    assert _code(lambda: r53.list_hosted_zones()) == ("AccessDenied", 403)
    w.set_weights(100, 0, r53)
    # failed changes changed nothing and are not in the change log
    assert len(aws.route53_changes()) == 1


def test_faults_for_a_time_window_and_by_caller(aws: LocalAws) -> None:
    build(aws)
    sd = no_retry_client(aws, "servicediscovery")
    aws.fail_for("servicediscovery", "ListInstances", "5xx", seconds=0.5)  # caller=function: not us
    sd.list_namespaces()
    aws.fail_for("cloudmap", "ListNamespaces", "5xx", seconds=0.5, caller="any")
    assert _code(lambda: sd.list_namespaces()) == ("InternalFailure", 500)
    time.sleep(0.6)
    sd.list_namespaces()


def test_cbor_faults_are_cbor_errors(aws: LocalAws) -> None:
    aws.fail_next("cloudwatch", "DescribeAlarms", "throttle")  # the CBOR client says app/localaws-fn
    r = cc.call(aws.endpoint_url, "DescribeAlarms", {})
    assert r.status == 400
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor" and r.headers["Content-Type"] == "application/cbor"
    assert r.body["__type"] == "com.amazonaws.cloudwatch#Throttling"
    assert r.headers["x-amzn-query-error"] == "Throttling;Sender"
    aws.fail_next("cloudwatch", "DescribeAlarms", "permanent")
    r = cc.call(aws.endpoint_url, "DescribeAlarms", {})
    assert r.status == 403 and r.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    assert cc.call(aws.endpoint_url, "DescribeAlarms", {}).status == 200


def test_step_functions_faults(aws: LocalAws) -> None:
    sfn = no_retry_client(aws, "stepfunctions")
    aws.fail_next("sfn", "ListStateMachines", "throttle", caller="harness")
    assert _code(lambda: sfn.list_state_machines()) == ("ThrottlingException", 400)


def test_route53_rate_limit_answers_throttling_above_five_per_second(aws: LocalAws) -> None:
    build(aws)
    r53 = no_retry_client(aws, "route53")
    aws.route53_rate_limit(True, rate=5.0)
    results = []
    for _ in range(8):
        try:
            r53.list_hosted_zones()
            results.append("ok")
        except ClientError as e:
            results.append(e.response["Error"]["Code"])
    assert results[:5] == ["ok"] * 5
    assert "Throttling" in results[5:]
    time.sleep(1.1)
    r53.list_hosted_zones()
    status = aws.info()["route53RateLimit"]
    assert status["enabled"] and status["throttled"] >= 1
    aws.route53_rate_limit(False)
    for _ in range(10):
        r53.list_hosted_zones()


def test_every_route53_change_is_recorded_with_weights_and_healthy_counts(aws: LocalAws) -> None:
    w = build(aws)
    w.create_task_set("blue", "dep-1")
    w.set_weights(100, 0)
    aws.set_unhealthy(next=True)
    w.create_task_set("green", "dep-2")
    w.set_weights(90, 10)  # weight on a slot without healthy instances: the log shows it
    aws.set_healthy(external_id="dep-2")
    w.set_weights(0, 100)
    changes = aws.route53_changes()
    assert [c["seq"] for c in changes] == [1, 2, 3]
    snap = [
        [(r["setIdentifier"], r["weight"], r["cloudMapService"], r["instances"], r["healthyInstances"]) for r in c["records"]["my-cname.ns-1"]]
        for c in changes
    ]
    assert snap == [
        [("blue", 100, "service-blue", 2, 2), ("green", 0, "service-green", 0, 0)],
        [("blue", 90, "service-blue", 2, 2), ("green", 10, "service-green", 2, 0)],
        [("blue", 0, "service-blue", 2, 2), ("green", 100, "service-green", 2, 2)],
    ]
    assert changes[0]["changes"][0] == {"action": "UPSERT", "name": "my-cname.ns-1", "type": "CNAME", "setIdentifier": "blue", "weight": 100, "ttl": 5}
    assert all(c["callSeq"] for c in changes)
    aws.reset_log()
    assert aws.route53_changes() == [] and aws.calls() == []


def _txt(action: str, value: str, ttl: int = 60) -> dict:
    return {
        "Action": action,
        "ResourceRecordSet": {
            "Name": "_ecs-dns-canary-lock.my-cname.ns-1",
            "Type": "TXT",
            "TTL": ttl,
            "ResourceRecords": [{"Value": value}],
        },
    }


def test_route53_create_and_delete_are_conditional_and_batches_atomic(aws: LocalAws) -> None:
    """What the engine's deployment lock relies on (Route 53 API Reference,
    ChangeResourceRecordSets): CREATE fails when the record exists, DELETE
    unless every value matches, and a failed batch changes nothing."""
    w = build(aws)
    r53 = no_retry_client(aws, "route53")

    def change(*changes: dict) -> None:
        r53.change_resource_record_sets(HostedZoneId=w.zone_id, ChangeBatch={"Changes": list(changes)})

    def lock_value() -> list[str]:
        sets = r53.list_resource_record_sets(
            HostedZoneId=w.zone_id, StartRecordName="_ecs-dns-canary-lock.my-cname.ns-1", StartRecordType="TXT", MaxItems="1"
        )["ResourceRecordSets"]
        return [r["ResourceRecords"][0]["Value"] for r in sets if r["Type"] == "TXT"]

    change(_txt("CREATE", '"owner=a at=1"'))
    # A second CREATE with another value: refused, not an overwrite.
    with pytest.raises(ClientError) as e:
        change(_txt("CREATE", '"owner=b at=2"'))
    assert e.value.response["Error"]["Code"] == "InvalidChangeBatch"
    assert "already exists" in e.value.response["Error"]["Message"]
    assert lock_value() == ['"owner=a at=1"']
    # Compare-and-swap with a stale value: the whole batch is refused.
    with pytest.raises(ClientError) as e:
        change(_txt("DELETE", '"owner=z at=0"'), _txt("CREATE", '"owner=b at=2"'))
    assert e.value.response["Error"]["Code"] == "InvalidChangeBatch"
    # Route 53's wording for an existing record whose values differ.
    assert "do not match the current values" in e.value.response["Error"]["Message"]
    assert lock_value() == ['"owner=a at=1"']
    # With the value read: swapped in one batch.
    change(_txt("DELETE", '"owner=a at=1"'), _txt("CREATE", '"owner=b at=2"'))
    assert lock_value() == ['"owner=b at=2"']
    # UPSERT stays unconditional (the weight changes use it).
    w.set_weights(100, 0, r53)
    w.set_weights(90, 10, r53)


def test_a_batch_with_delete_gets_its_own_change_id_and_propagation(aws: LocalAws) -> None:
    """A compare-and-swap batch (DELETE + CREATE, what the engine writes) goes
    through the DNS state like any change: its own change id, PENDING for the
    propagation delay, then INSYNC. Guards the patch order in
    patches/__init__.py: with route53_change_batch applied after dns_state,
    the swap answered INSYNC at once under moto's fixed id and GetChange
    said NoSuchChange (every engine weight change failed)."""
    w = build(aws)
    r53 = no_retry_client(aws, "route53")
    first = r53.change_resource_record_sets(HostedZoneId=w.zone_id, ChangeBatch={"Changes": [_txt("CREATE", '"v=1"')]})
    aws.route53_propagation(1.0)
    swapped = r53.change_resource_record_sets(
        HostedZoneId=w.zone_id, ChangeBatch={"Changes": [_txt("DELETE", '"v=1"'), _txt("CREATE", '"v=2"')]}
    )["ChangeInfo"]
    assert swapped["Id"] != first["ChangeInfo"]["Id"]
    assert swapped["Status"] == "PENDING"
    assert r53.get_change(Id=swapped["Id"])["ChangeInfo"]["Status"] == "PENDING"
    deadline = time.monotonic() + 10
    while r53.get_change(Id=swapped["Id"])["ChangeInfo"]["Status"] != "INSYNC":
        assert time.monotonic() < deadline, "the swap never became INSYNC"
        time.sleep(0.1)
    assert [c["changeId"] for c in aws.route53_changes()][-1] == swapped["Id"].rsplit("/", 1)[-1]
