"""CloudWatch: the RPC v2 CBOR front, alarm history, alarm events."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import cbor2
import cbor_client as cc
from fake_lambda import FakeLambda, recorder
from sfn_helpers import wait_for

from localaws import LocalAws

ALARM = {
    "AlarmName": "orders-5xx",
    "MetricName": "5xx",
    "Namespace": "orders",
    "Statistic": "Sum",
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 5.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "Dimensions": [{"Name": "Service", "Value": "orders"}],
    "AlarmDescription": "5xx above 5/min",
}


def _encoded(key: str) -> bytes:
    """The CBOR bytes of a short text key (major type 3)."""
    raw = key.encode()
    assert len(raw) < 24
    return bytes([0x60 + len(raw)]) + raw


def test_cbor_round_trip_matches_the_protocol(aws: LocalAws) -> None:
    ep = aws.endpoint_url
    r = cc.call(ep, "PutMetricAlarm", ALARM)
    # an operation without output: 200, the protocol header, no body, no content type
    assert r.status == 200 and r.raw == b""
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor" and "Content-Type" not in r.headers
    r = cc.call(ep, "DescribeAlarms", {"AlarmNames": ["orders-5xx"]})
    assert r.status == 200
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor" and r.headers["Content-Type"] == "application/cbor"
    alarm = r.body["MetricAlarms"][0]
    assert alarm["AlarmName"] == "orders-5xx" and alarm["StateValue"] == "INSUFFICIENT_DATA"
    # timestamps: tag 1 (0xc1) over a double (0xfb), epoch seconds
    assert _encoded("StateUpdatedTimestamp") + b"\xc1\xfb" in r.raw
    assert abs(alarm["StateUpdatedTimestamp"].timestamp() - time.time()) < 60
    # doubles stay CBOR floats even when integral (the SDK refuses an integer there)
    assert _encoded("Threshold") + b"\xfb" in r.raw
    assert isinstance(alarm["Threshold"], float) and alarm["Threshold"] == 5.0
    assert isinstance(alarm["Period"], int) and alarm["ActionsEnabled"] is True
    assert alarm["Dimensions"] == [{"Name": "Service", "Value": "orders"}]
    assert None not in alarm.values()


def test_cbor_errors_carry_type_and_query_code(aws: LocalAws) -> None:
    r = cc.call(aws.endpoint_url, "SetAlarmState", {"AlarmName": "missing", "StateValue": "ALARM", "StateReason": "x"})
    assert 400 <= r.status < 500
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor" and r.headers["Content-Type"] == "application/cbor"
    assert r.body["__type"] == "com.amazonaws.cloudwatch#ResourceNotFound"
    assert "message" in r.body
    assert r.headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    r = cc.call(aws.endpoint_url, "DescribeAlarmHistory", {"NextToken": "not-a-token"})
    assert r.body["__type"] == "com.amazonaws.cloudwatch#InvalidNextToken"
    r = cc.call(aws.endpoint_url, "NoSuchOperation", {})
    assert r.status == 404


def test_state_changes_are_in_the_history_for_cbor_and_boto3(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(**ALARM)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="Threshold Crossed", StateReasonData='{"version":"1.0"}')
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="again")  # no transition
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="OK", StateReason="recovered")
    items = cw.describe_alarm_history(AlarmName="orders-5xx", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from ALARM to OK", "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    data = json.loads(items[1]["HistoryData"])
    assert data["version"] == "1.0"
    assert data["oldState"]["stateValue"] == "INSUFFICIENT_DATA"
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "Threshold Crossed", "stateReasonData": {"version": "1.0"}}
    assert items[1]["AlarmType"] == "MetricAlarm"
    # the same through RPC v2 CBOR, with the filters the gate uses
    r = cc.call(
        aws.endpoint_url,
        "DescribeAlarmHistory",
        {
            "AlarmName": "orders-5xx",
            "HistoryItemType": "StateUpdate",
            "StartDate": cbor2.CBORTag(1, before.timestamp()),
            "EndDate": cbor2.CBORTag(1, time.time() + 5),
            "ScanBy": "TimestampAscending",
            "MaxRecords": 1,
        },
    )
    assert r.status == 200
    page = r.body
    assert [i["HistorySummary"] for i in page["AlarmHistoryItems"]] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert isinstance(page["AlarmHistoryItems"][0]["Timestamp"], datetime)
    r2 = cc.call(aws.endpoint_url, "DescribeAlarmHistory", {"AlarmName": "orders-5xx", "HistoryItemType": "StateUpdate", "ScanBy": "TimestampAscending", "MaxRecords": 1, "NextToken": page["NextToken"]})
    assert [i["HistorySummary"] for i in r2.body["AlarmHistoryItems"]] == ["Alarm updated from ALARM to OK"]
    assert "NextToken" not in r2.body
    # a window after the changes is empty
    r3 = cc.call(aws.endpoint_url, "DescribeAlarmHistory", {"AlarmName": "orders-5xx", "StartDate": cbor2.CBORTag(1, time.time() + 1)})
    assert r3.body.get("AlarmHistoryItems", []) == []
    # creation is a ConfigurationUpdate; all types without a filter; query protocol too
    types = {i["HistoryItemType"] for i in cw.describe_alarm_history(AlarmName="orders-5xx")["AlarmHistoryItems"]}
    assert types == {"StateUpdate", "ConfigurationUpdate"}


def test_update_keeps_state_and_state_value_filters_names(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(**ALARM)
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="x")
    cw.put_metric_alarm(**{**ALARM, "Threshold": 10.0})
    alarm = cw.describe_alarms(AlarmNames=["orders-5xx"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM" and alarm["Threshold"] == 10.0
    assert cw.describe_alarms(AlarmNames=["orders-5xx"], StateValue="OK")["MetricAlarms"] == []
    assert len(cw.describe_alarms(AlarmNames=["orders-5xx"], StateValue="ALARM")["MetricAlarms"]) == 1


def test_other_operations_through_cbor(aws: LocalAws) -> None:
    ep = aws.endpoint_url
    assert cc.call(ep, "PutMetricAlarm", ALARM).status == 200
    r = cc.call(ep, "PutMetricData", {"Namespace": "orders", "MetricData": [{"MetricName": "5xx", "Value": 3.0, "Timestamp": cbor2.CBORTag(1, time.time())}]})
    assert r.status == 200
    r = cc.call(ep, "DescribeAlarms", {"AlarmNamePrefix": "orders-", "StateValue": "INSUFFICIENT_DATA"})
    assert [a["AlarmName"] for a in r.body["MetricAlarms"]] == ["orders-5xx"]
    assert cc.call(ep, "DeleteAlarms", {"AlarmNames": ["orders-5xx"]}).status == 200
    assert cc.call(ep, "DescribeAlarms", {}).body.get("MetricAlarms", []) == []
    calls = aws.calls(service="cloudwatch")
    assert {c["protocol"] for c in calls} == {"rpc-v2-cbor"}
    assert {c["caller"] for c in calls} == {"function"}


def test_alarm_event_is_delivered_to_alarm_rollback(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["alarm-rollback"] = recorder(events, {"handled": True})
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(**ALARM)
    t0 = time.time()
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="Threshold Crossed", StateReasonData='{"version":"1.0"}')
    wait_for(lambda: events, 5, "alarm event")
    assert time.time() - t0 < 1.0
    ev = events[0]
    assert ev["version"] == "0" and ev["source"] == "aws.cloudwatch"
    assert ev["detail-type"] == "CloudWatch Alarm State Change"
    assert ev["account"] == "123456789012" and ev["region"] == "us-east-1"
    assert ev["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-5xx"]
    assert ev["time"].endswith("Z")
    d = ev["detail"]
    assert d["alarmName"] == "orders-5xx"
    assert d["state"]["value"] == "ALARM" and d["state"]["reason"] == "Threshold Crossed"
    assert d["state"]["reasonData"] == '{"version":"1.0"}'
    assert d["state"]["timestamp"].endswith("+0000")
    assert d["previousState"]["value"] == "INSUFFICIENT_DATA"
    metric = d["configuration"]["metrics"][0]["metricStat"]
    assert metric["metric"] == {"namespace": "orders", "name": "5xx", "dimensions": {"Service": "orders"}}
    assert metric["period"] == 60 and metric["stat"] == "Sum"
    assert d["configuration"]["description"] == "5xx above 5/min"
    deliveries = wait_for(lambda: [x for x in aws.alarm_events()["deliveries"] if x.get("result")], 5, "delivery log")
    assert deliveries[0]["result"] == "ok" and deliveries[0]["response"] == {"handled": True}
    assert deliveries[0]["deliveryLatencyMs"] < 1000


def test_alarm_events_can_be_switched_off(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["alarm-rollback"] = recorder(events)
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(**ALARM)
    aws.alarm_events(enabled=False)
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="x")
    deliveries = wait_for(lambda: [x for x in aws.alarm_events()["deliveries"] if x.get("result")], 5, "drop")
    assert deliveries[0]["result"] == "dropped"
    time.sleep(0.2)
    assert events == []
    # still in the history: the end-of-bake check is the safety net
    assert aws.alarm_history("orders-5xx")[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    aws.alarm_events(enabled=True)
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="OK", StateReason="x")
    wait_for(lambda: events, 5, "event after switching on")
    assert events[0]["detail"]["state"]["value"] == "OK"


def test_history_over_the_query_protocol(aws: LocalAws) -> None:
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(**ALARM)
    cw.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="r")
    body = "Action=DescribeAlarmHistory&Version=2010-08-01&AlarmName=orders-5xx&HistoryItemType=StateUpdate"
    req = AWSRequest(
        method="POST",
        url=aws.endpoint_url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("localaws", "localaws"), "monitoring", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10)
    assert r.status_code == 200
    assert "<HistorySummary>Alarm updated from INSUFFICIENT_DATA to ALARM</HistorySummary>" in r.text
    assert aws.calls(operation="DescribeAlarmHistory")[0]["protocol"] == "query"


def test_list_metrics_lists_each_multi_dimension_metric_once(aws: LocalAws) -> None:
    # ListMetrics (API Reference): one entry per namespace + name + dimension
    # set, however many data points; moto listed a 2-dimension metric once per
    # datum. Dimensions in either order are the same metric.
    cw = aws.client("cloudwatch")
    ns = f"list-{time.time_ns()}"
    t0 = datetime.now(timezone.utc) - timedelta(seconds=60)
    sv = [{"Name": "Service", "Value": "orders"}, {"Name": "Version", "Value": "v1"}]
    for i, dims in enumerate([sv, sv, list(reversed(sv)), [sv[0], {"Name": "Version", "Value": "v2"}]]):
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Requests", "Value": 1.0, "Dimensions": dims,
                                                      "Timestamp": t0 + timedelta(seconds=10 * i)}])
    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    assert sorted(tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed) == [
        (("Service", "orders"), ("Version", "v1")),
        (("Service", "orders"), ("Version", "v2")),
    ]
