"""Alarms that evaluate (patches/cloudwatch_eval.py), composite alarms, the
AlarmTypes filters and the CloudWatch rate limits, on a started local AWS.

Most tests put data at timestamps in the past and evaluate with
`aws.evaluate_alarms(at=T)` (the evaluator thread is off by default), so
the period arithmetic is exact and nothing waits for the clock; one test
runs the evaluator thread with a fast tick."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions
import cbor_client as cc
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from no_retry import no_retry_client
from fake_lambda import FakeLambda, recorder
from sfn_helpers import wait_for

from localaws import LocalAws

NS = "Clients"


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def base_time() -> int:
    """A minute boundary an hour ago: every period of the tests is complete."""
    return (int(time.time()) // 3600) * 3600 - 3600


def put_alarm(cw: Any, name: str, **kw: Any) -> None:
    args = {
        "AlarmName": name,
        "Namespace": NS,
        "MetricName": "Errors5xx",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Dimensions": [{"Name": "Service", "Value": "orders"}],
    }
    args.update(kw)
    if "ExtendedStatistic" in kw:
        args.pop("Statistic")
    cw.put_metric_alarm(**args)


def put_values(cw: Any, points: Sequence[tuple[float, float]], dims: list[dict[str, str]] | None = None, metric: str = "Errors5xx") -> None:
    dims = [{"Name": "Service", "Value": "orders"}] if dims is None else dims
    data = [{"MetricName": metric, "Value": v, "Timestamp": _ts(t), "Dimensions": dims} for t, v in points]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=NS, MetricData=data[i : i + 500])


def state(cw: Any, name: str) -> str:
    doc = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    alarms = doc["MetricAlarms"] + doc["CompositeAlarms"]
    return alarms[0]["StateValue"]


def signed(aws: LocalAws, body: bytes, headers: dict[str, str]) -> requests.Response:
    req = AWSRequest(method="POST", url=aws.endpoint_url + "/", data=body, headers=headers)
    SigV4Auth(Credentials("localaws", "localaws"), "monitoring", "us-east-1").add_auth(req)
    prepared = req.prepare()
    return requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10)


def query(aws: LocalAws, params: dict[str, str]) -> requests.Response:
    from urllib.parse import urlencode

    body = urlencode({"Version": "2010-08-01", **params}).encode()
    return signed(aws, body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def json_call(aws: LocalAws, op: str, params: dict[str, Any]) -> requests.Response:
    return signed(
        aws,
        json.dumps(params).encode(),
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"GraniteServiceVersion20100801.{op}"},
    )


# ---------------------------------------------------------------- statistics


EXPECTED = {"Sum": 5050.0, "Average": 50.5, "Minimum": 1.0, "Maximum": 100.0, "SampleCount": 100.0, "p99": 99.0, "p50": 50.0}


def test_new_alarms_start_insufficient_data_and_each_statistic_is_exact(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    # 1..100 inside the minute [t-60, t); a value in the minute before must not count.
    put_values(cw, [(t - 60 + (i % 60), float(i)) for i in range(1, 101)] + [(t - 61, 1000.0)])
    for stat, value in EXPECTED.items():
        key = {"ExtendedStatistic": stat} if stat.startswith("p") else {"Statistic": stat}
        # at the value: >= fires, > does not: the statistic is exactly `value`
        put_alarm(cw, f"{stat}-ge", Threshold=value, ComparisonOperator="GreaterThanOrEqualToThreshold", **key)
        put_alarm(cw, f"{stat}-gt", Threshold=value, ComparisonOperator="GreaterThanThreshold", **key)
    alarms = cw.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    assert {a["StateValue"] for a in alarms} == {"INSUFFICIENT_DATA"}
    assert {a["StateReason"] for a in alarms} == {"Unchecked: Initial alarm creation"}
    changes = {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)}
    for stat in EXPECTED:
        assert changes[f"{stat}-ge"] == "ALARM", stat
        assert changes[f"{stat}-gt"] == "OK", stat
    a = cw.describe_alarms(AlarmNames=["Sum-ge"])["MetricAlarms"][0]
    assert a["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [5050.0 (")
    assert "was greater than or equal to the threshold (5050.0)" in a["StateReason"]
    data = json.loads(a["StateReasonData"])
    assert data["recentDatapoints"] == [5050.0] and data["period"] == 60 and data["statistic"] == "Sum"
    # a second evaluation with the same data changes nothing
    assert aws.evaluate_alarms(at=t + 5) == []


def test_statistic_sets_count_for_sum_min_max_samplecount(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    cw.put_metric_data(
        Namespace=NS,
        MetricData=[
            {
                "MetricName": "Latency",
                "Timestamp": _ts(t - 30),
                "StatisticValues": {"SampleCount": 4, "Sum": 40, "Minimum": 2, "Maximum": 20},
                "Dimensions": [{"Name": "Service", "Value": "orders"}],
            }
        ],
    )
    put_values(cw, [(t - 20, 30.0)], metric="Latency")
    for stat, value in {"Sum": 70.0, "SampleCount": 5.0, "Minimum": 2.0, "Maximum": 30.0, "Average": 14.0}.items():
        put_alarm(cw, stat, MetricName="Latency", Statistic=stat, Threshold=value)
        put_alarm(cw, stat + "-gt", MetricName="Latency", Statistic=stat, Threshold=value, ComparisonOperator="GreaterThanThreshold")
    changes = {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)}
    assert all(changes[s] == "ALARM" and changes[s + "-gt"] == "OK" for s in ("Sum", "SampleCount", "Minimum", "Maximum", "Average")), changes


# ---------------------------------------------------------------- operators


def test_every_static_operator_and_band_operators_are_refused(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_values(cw, [(t - 30, 5.0)])
    cases = {
        ("GreaterThanOrEqualToThreshold", 5.0): "ALARM",
        ("GreaterThanOrEqualToThreshold", 5.5): "OK",
        ("GreaterThanThreshold", 5.0): "OK",
        ("GreaterThanThreshold", 4.5): "ALARM",
        ("LessThanThreshold", 5.0): "OK",
        ("LessThanThreshold", 5.5): "ALARM",
        ("LessThanOrEqualToThreshold", 5.0): "ALARM",
        ("LessThanOrEqualToThreshold", 4.5): "OK",
    }
    for i, (op, thr) in enumerate(cases):
        put_alarm(cw, f"op-{i}", ComparisonOperator=op, Threshold=thr)
    changes = {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)}
    assert {key: changes[f"op-{i}"] for i, key in enumerate(cases)} == cases
    for op in ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            put_alarm(cw, "band", ComparisonOperator=op)
        assert e.value.response["Error"]["Code"] == "ValidationError"
        assert "ThresholdMetricId" in e.value.response["Error"]["Message"]


# ---------------------------------------------------------------- missing data, M of N

# The two tables of the CloudWatch User Guide, "How alarm state is evaluated
# when data is missing": 5 most recent periods, oldest first; 0 good, X
# breaching, - missing; results for missing, ignore, breaching, notBreaching
# ("keep" = retain current state, here the initial INSUFFICIENT_DATA).
GUIDE_TABLES = [
    # Datapoints to Alarm 3 of Evaluation Periods 3
    ("0 - X - X", 3, ("OK", "OK", "OK", "OK")),
    ("0 - - - -", 3, ("OK", "OK", "OK", "OK")),
    ("- - - - -", 3, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("0 X X - X", 3, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("- - - - X", 3, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("X - - - -", 3, ("ALARM", "keep", "ALARM", "OK")),
    # 2 of 3
    ("0 - X - X", 2, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 0 X 0 X", 2, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 - X - -", 2, ("OK", "OK", "ALARM", "OK")),
    ("- - - - 0", 2, ("OK", "OK", "ALARM", "OK")),
    ("- - - - X", 2, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


def test_missing_data_and_m_of_n_follow_the_user_guide_tables(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    for row, (pattern, m, _) in enumerate(GUIDE_TABLES):
        dims = [{"Name": "Service", "Value": f"row-{row}"}]
        points = [(t - (5 - i) * 60 + 30, 10.0 if c == "X" else 0.0) for i, c in enumerate(pattern.split()) if c != "-"]
        put_values(cw, points, dims)
        for tmd in TREATMENTS:
            put_alarm(
                cw,
                f"row-{row}-{tmd}",
                Dimensions=dims,
                EvaluationPeriods=3,
                DatapointsToAlarm=m,
                Threshold=5.0,
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData=tmd,
            )
    aws.evaluate_alarms(at=t)
    got = {}
    for a in cw.describe_alarms(AlarmNamePrefix="row-")["MetricAlarms"]:
        got[a["AlarmName"]] = a["StateValue"]
    for row, (pattern, m, expected) in enumerate(GUIDE_TABLES):
        for tmd, want in zip(TREATMENTS, expected, strict=True):
            want = "INSUFFICIENT_DATA" if want == "keep" else want
            assert got[f"row-{row}-{tmd}"] == want, (pattern, m, tmd)


def test_ignore_keeps_a_state_set_by_hand_and_missing_does_not(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_alarm(cw, "ignore", TreatMissingData="ignore")
    put_alarm(cw, "missing", TreatMissingData="missing")
    for name in ("ignore", "missing"):
        aws.set_alarm_state(name, "ALARM")
    aws.evaluate_alarms(at=t)
    assert state(cw, "ignore") == "ALARM"
    assert state(cw, "missing") == "INSUFFICIENT_DATA"


# ---------------------------------------------------------------- periods, delay, dimensions


def test_period_10_sees_the_last_10_seconds_and_period_60_the_minute(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_values(cw, [(t - 55, 1.0), (t - 5, 1.0)])
    put_alarm(cw, "p10", Period=10, Threshold=2.0, TreatMissingData="notBreaching")
    put_alarm(cw, "p20", Period=20, Threshold=1.0, TreatMissingData="notBreaching")
    put_alarm(cw, "p30", Period=30, Threshold=2.0, TreatMissingData="notBreaching")
    put_alarm(cw, "p60", Period=60, Threshold=2.0, TreatMissingData="notBreaching")
    put_alarm(cw, "p120", Period=120, EvaluationPeriods=1, Threshold=2.0, TreatMissingData="notBreaching")
    changes = {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)}
    assert changes == {"p10": "OK", "p20": "ALARM", "p30": "OK", "p60": "ALARM", "p120": "ALARM"}
    # ten seconds later the 10 s alarm's newest period is empty: notBreaching
    assert aws.evaluate_alarms(at=t + 10) == []
    for bad in (15, 45, 90):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            put_alarm(cw, "bad-period", Period=bad)
        assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_only_complete_periods_count_and_the_delay_setting_shifts_them(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_values(cw, [(t - 5, 3.0), (t + 1, 50.0)])  # t+1: the period still open at t
    put_alarm(cw, "hi-res", Period=10, Threshold=3.0)
    put_alarm(cw, "huge", Period=10, Threshold=50.0)
    # the 50 in the open period [t, t+10) does not count yet
    assert {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t + 9.9)} == {"hi-res": "ALARM", "huge": "OK"}
    assert {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t + 10)} == {"huge": "ALARM"}
    aws.reset()
    put_values(cw, [(t - 5, 3.0)])
    put_alarm(cw, "hi-res", Period=10, Threshold=3.0)
    aws.alarm_evaluation(delay_seconds=10)
    # with a 10 s metric delay, at t the newest evaluated period is [t-20, t-10): empty
    assert aws.evaluate_alarms(at=t) == []
    assert aws.evaluate_alarms(at=t + 10)[0]["to"] == "ALARM"
    assert aws.alarm_evaluation()["delaySeconds"] == 10
    aws.reset()
    assert aws.alarm_evaluation()["delaySeconds"] == 0 and aws.alarm_evaluation()["enabled"] is False


def test_dimensions_must_match_exactly(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_values(cw, [(t - 30, 5.0)], dims=[{"Name": "Service", "Value": "orders"}, {"Name": "Version", "Value": "v3"}])
    put_values(cw, [(t - 30, 5.0)], dims=[])
    put_values(cw, [(t - 30, 5.0)], dims=[{"Name": "Service", "Value": "billing"}])
    put_alarm(cw, "service")
    put_alarm(cw, "service-version", Dimensions=[{"Name": "Version", "Value": "v3"}, {"Name": "Service", "Value": "orders"}], Threshold=5.0)
    put_alarm(cw, "unit", Dimensions=[{"Name": "Service", "Value": "billing"}], Unit="Count")
    assert {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)} == {"service-version": "ALARM"}


# ---------------------------------------------------------------- the evaluator thread


def test_evaluator_thread_changes_state_writes_history_and_sends_the_event(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["alarm-rollback"] = recorder(events)
    cw = aws.client("cloudwatch")
    put_alarm(cw, "canary-5xx", Period=10, EvaluationPeriods=1, Threshold=1.0)
    put_values(cw, [(time.time() - 10, 4.0)])
    status = aws.alarm_evaluation(enabled=True, tick_seconds=0.2)
    assert status["enabled"] and status["tickSeconds"] == 0.2
    try:
        wait_for(lambda: [e for e in events if e["detail"]["state"]["value"] == "ALARM"], 5, "ALARM event")
        ev = events[0]["detail"]
        assert ev["alarmName"] == "canary-5xx" and ev["previousState"]["value"] == "INSUFFICIENT_DATA"
        assert ev["state"]["reason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [4.0 (")
        assert json.loads(ev["state"]["reasonData"])["recentDatapoints"] == [4.0]
        assert ev["configuration"]["metrics"][0]["metricStat"]["period"] == 10
        items = cw.describe_alarm_history(AlarmName="canary-5xx", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        assert items[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
        # SetAlarmState still works; the next evaluation puts the state back, as on AWS
        aws.set_alarm_state("canary-5xx", "OK", "by hand")
        wait_for(lambda: [e for e in events if e["detail"]["state"]["value"] == "OK"], 5, "OK event")
        wait_for(lambda: state(cw, "canary-5xx") == "ALARM", 5, "evaluation after SetAlarmState")
    finally:
        aws.alarm_evaluation(enabled=False)
    assert aws.alarm_evaluation()["ticks"] > 0


# ---------------------------------------------------------------- composite alarms


def test_composite_alarms_follow_their_children_with_events_and_history(aws: LocalAws, fake_lambda: FakeLambda) -> None:
    events: list[dict] = []
    fake_lambda.handlers["alarm-rollback"] = recorder(events)
    cw = aws.client("cloudwatch")
    put_alarm(cw, "a")
    put_alarm(cw, "b")
    arn_a = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"
    rules = {
        "and": "ALARM(a) AND ALARM(b)",
        "or": 'ALARM("a") OR ALARM(b)',
        "not": f"NOT ALARM({arn_a})",
        "nested": "(ALARM(a) OR FALSE) AND NOT (OK(b) OR INSUFFICIENT_DATA(b)) AND TRUE",
    }
    for name, rule in rules.items():
        cw.put_composite_alarm(AlarmName=name, AlarmRule=rule, AlarmDescription=f"gate {name}")
    assert {n: state(cw, n) for n in rules} == {"and": "OK", "or": "OK", "not": "ALARM", "nested": "OK"}
    aws.set_alarm_state("a", "ALARM", "errors")
    assert {n: state(cw, n) for n in rules} == {"and": "OK", "or": "ALARM", "not": "OK", "nested": "OK"}
    aws.set_alarm_state("b", "ALARM", "errors")
    assert {n: state(cw, n) for n in rules} == {"and": "ALARM", "or": "ALARM", "not": "OK", "nested": "ALARM"}
    aws.set_alarm_state("a", "OK", "recovered")
    assert {n: state(cw, n) for n in rules} == {"and": "OK", "or": "ALARM", "not": "ALARM", "nested": "OK"}

    or_events = wait_for(lambda: [e for e in events if e["detail"]["alarmName"] == "or"][:2] if len([e for e in events if e["detail"]["alarmName"] == "or"]) >= 2 else [], 5, "composite events")
    # created INSUFFICIENT_DATA, evaluated at once to OK, then ALARM when a fired
    by_state = {e["detail"]["state"]["value"]: e for e in or_events}
    assert by_state["OK"]["detail"]["previousState"]["value"] == "INSUFFICIENT_DATA"
    ev = by_state["ALARM"]
    assert ev["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:or"]
    d = ev["detail"]
    assert d["state"]["value"] == "ALARM" and d["previousState"]["value"] == "OK"
    assert d["state"]["reason"].startswith(f"{arn_a} transitioned to ALARM at ")
    triggering = json.loads(d["state"]["reasonData"])["triggeringAlarms"]
    assert triggering[0]["arn"] == arn_a and triggering[0]["state"]["value"] == "ALARM"
    assert d["configuration"] == {"alarmRule": rules["or"], "description": "gate or"}

    # history: StateUpdate items of a composite only with AlarmTypes naming it
    assert cw.describe_alarm_history(AlarmName="or", HistoryItemType="StateUpdate")["AlarmHistoryItems"] == []
    items = cw.describe_alarm_history(AlarmName="or", HistoryItemType="StateUpdate", AlarmTypes=["CompositeAlarm"])["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]
    assert {i["AlarmType"] for i in items} == {"CompositeAlarm"}

    # SetAlarmState works on composites and holds until a child changes or
    # the configuration is updated (SetAlarmState reference); DeleteAlarms too
    aws.set_alarm_state("and", "ALARM", "by hand")
    assert state(cw, "and") == "ALARM"
    cw.put_composite_alarm(AlarmName="and", AlarmRule="ALARM(a) AND ALARM(b)")
    assert state(cw, "and") == "OK"
    cw.delete_alarms(AlarmNames=["and"])
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]] == ["or", "not", "nested"]
    # a child cannot be deleted while a composite alarm depends on it; with its parents it can
    with pytest.raises(botocore.exceptions.ClientError) as e:
        no_retry_client(aws, "cloudwatch").delete_alarms(AlarmNames=["a"])
    assert e.value.response["Error"]["Code"] == "ValidationError" and "depends on it" in e.value.response["Error"]["Message"]
    cw.delete_alarms(AlarmNames=["a", "or", "not", "nested"])
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmTypes=["CompositeAlarm", "MetricAlarm"])["MetricAlarms"]] == ["b"]


def test_composite_rules_are_validated(aws: LocalAws) -> None:
    cw = no_retry_client(aws, "cloudwatch")
    put_alarm(cw, "a")
    for rule, words in (("ALARM(nope) OR ALARM(a)", "do not exist"), ("ALARM(a) AND", "syntax"), ("ALARM(a) XOR OK(a)", "syntax"), ("(ALARM(a)", "syntax")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.put_composite_alarm(AlarmName="c", AlarmRule=rule)
        assert e.value.response["Error"]["Code"] == "ValidationError", rule
        assert words in e.value.response["Error"]["Message"], rule


# ---------------------------------------------------------------- AlarmTypes in every protocol


def test_alarm_types_filter_describe_alarms_and_history_in_query_json_and_cbor(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    put_alarm(cw, "m")
    cw.put_composite_alarm(AlarmName="c", AlarmRule="ALARM(m)")
    aws.set_alarm_state("m", "ALARM", "x")  # c goes ALARM too
    ep = aws.endpoint_url

    # DescribeAlarms
    r = cc.call(ep, "DescribeAlarms", {})
    assert [a["AlarmName"] for a in r.body["MetricAlarms"]] == ["m"] and not r.body.get("CompositeAlarms")
    r = cc.call(ep, "DescribeAlarms", {"AlarmTypes": ["CompositeAlarm"]})
    assert not r.body.get("MetricAlarms") and [a["AlarmName"] for a in r.body["CompositeAlarms"]] == ["c"]
    assert r.body["CompositeAlarms"][0]["AlarmRule"] == "ALARM(m)" and r.body["CompositeAlarms"][0]["StateValue"] == "ALARM"
    r = cc.call(ep, "DescribeAlarms", {"AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "AlarmNames": ["m", "c"]})
    assert len(r.body["MetricAlarms"]) == 1 and len(r.body["CompositeAlarms"]) == 1
    q = query(aws, {"Action": "DescribeAlarms"}).text
    assert "<AlarmName>m</AlarmName>" in q and "<AlarmName>c</AlarmName>" not in q
    q = query(aws, {"Action": "DescribeAlarms", "AlarmTypes.member.1": "CompositeAlarm"}).text
    assert "<AlarmName>c</AlarmName>" in q and "<AlarmName>m</AlarmName>" not in q and "<AlarmRule>ALARM(m)</AlarmRule>" in q
    j = json_call(aws, "DescribeAlarms", {}).json()
    assert [a["AlarmName"] for a in j["MetricAlarms"]] == ["m"] and not j.get("CompositeAlarms")
    j = json_call(aws, "DescribeAlarms", {"AlarmTypes": ["CompositeAlarm"]}).json()
    assert [a["AlarmName"] for a in j["CompositeAlarms"]] == ["c"] and not j.get("MetricAlarms")

    # DescribeAlarmHistory
    def names(items: list[dict]) -> set[str]:
        return {i["AlarmName"] for i in items if i["HistoryItemType"] == "StateUpdate"}

    assert names(cc.call(ep, "DescribeAlarmHistory", {}).body["AlarmHistoryItems"]) == {"m"}
    assert names(cc.call(ep, "DescribeAlarmHistory", {"AlarmTypes": ["CompositeAlarm"]}).body["AlarmHistoryItems"]) == {"c"}
    assert cc.call(ep, "DescribeAlarmHistory", {"AlarmName": "c"}).body.get("AlarmHistoryItems", []) == []
    both = cc.call(ep, "DescribeAlarmHistory", {"AlarmTypes": ["CompositeAlarm", "MetricAlarm"]}).body["AlarmHistoryItems"]
    assert names(both) == {"m", "c"}
    q = query(aws, {"Action": "DescribeAlarmHistory", "AlarmName": "c"}).text
    assert "<AlarmName>c</AlarmName>" not in q
    q = query(aws, {"Action": "DescribeAlarmHistory", "AlarmName": "c", "AlarmTypes.member.1": "CompositeAlarm"}).text
    assert "<HistorySummary>Alarm updated from OK to ALARM</HistorySummary>" in q
    j = json_call(aws, "DescribeAlarmHistory", {"AlarmName": "c", "AlarmTypes": ["CompositeAlarm"]}).json()
    assert "Alarm updated from OK to ALARM" in [i["HistorySummary"] for i in j["AlarmHistoryItems"]]
    assert json_call(aws, "DescribeAlarmHistory", {"AlarmName": "c"}).json().get("AlarmHistoryItems", []) == []

    # PutCompositeAlarm through CBOR (what aws-sdk-cloudwatch sends)
    r = cc.call(ep, "PutCompositeAlarm", {"AlarmName": "c2", "AlarmRule": "OK(m)"})
    assert r.status == 200 and r.raw == b""
    r = cc.call(ep, "PutCompositeAlarm", {"AlarmName": "c3", "AlarmRule": "OK(missing)"})
    assert r.status == 400 and r.headers["x-amzn-query-error"] == "ValidationError;Sender"
    # and through the query and JSON protocols
    assert query(aws, {"Action": "PutCompositeAlarm", "AlarmName": "c4", "AlarmRule": "ALARM(m)"}).status_code == 200
    assert json_call(aws, "PutCompositeAlarm", {"AlarmName": "c5", "AlarmRule": "NOT ALARM(m)"}).status_code == 200
    got = {a["AlarmName"]: a["StateValue"] for a in cc.call(ep, "DescribeAlarms", {"AlarmTypes": ["CompositeAlarm"]}).body["CompositeAlarms"]}
    assert got == {"c": "ALARM", "c2": "OK", "c4": "ALARM", "c5": "OK"}


# ---------------------------------------------------------------- rate limits


def _burst(aws: LocalAws, op: str, n: int) -> list[cc.CborResponse]:
    return [cc.call(aws.endpoint_url, op, {}) for _ in range(n)]


def test_describe_alarms_and_history_are_throttled_at_cloudwatch_rates(aws: LocalAws) -> None:
    # off by default: a burst passes
    assert all(r.status == 200 for r in _burst(aws, "DescribeAlarms", 15))
    status = aws.cloudwatch_rate_limit()
    assert status["rates"] == {"DescribeAlarms": 9.0, "DescribeAlarmHistory": 20.0}
    t0 = time.monotonic()
    alarms = _burst(aws, "DescribeAlarms", 20)
    history = _burst(aws, "DescribeAlarmHistory", 35)
    elapsed = time.monotonic() - t0
    ok_alarms = sum(r.status == 200 for r in alarms)
    ok_history = sum(r.status == 200 for r in history)
    # a full bucket (one second's worth) plus what refills while the burst runs
    assert 9 <= ok_alarms <= 9 + 9 * elapsed + 1, (ok_alarms, elapsed)
    assert 20 <= ok_history <= 20 + 20 * elapsed + 1, (ok_history, elapsed)
    throttled = next(r for r in alarms if r.status != 200)
    assert throttled.status == 400
    assert throttled.headers["x-amzn-query-error"] == "Throttling;Sender"
    assert throttled.body["__type"] == "com.amazonaws.cloudwatch#Throttling"
    # other operations are not limited; the query protocol gets its own error shape
    assert all(r.status == 200 for r in _burst(aws, "ListMetrics", 12))
    q = [query(aws, {"Action": "DescribeAlarms"}) for _ in range(20)]
    bad = [r for r in q if r.status_code != 200]
    assert bad and bad[0].status_code == 400 and "<Code>Throttling</Code>" in bad[0].text
    log = [c for c in aws.calls(service="cloudwatch", operation="DescribeAlarms") if c["fault"]]
    assert log and log[0]["fault"]["reason"] == "cloudwatch-rate-limit"
    # the sustained rate: a second later the bucket is full again (9), and
    # refills at 9/s while the next burst runs
    time.sleep(1.0)
    t1 = time.monotonic()
    again = sum(r.status == 200 for r in _burst(aws, "DescribeAlarms", 25))
    assert 9 <= again <= 9 + 9 * (time.monotonic() - t1) + 1
    aws.reset()
    assert aws.info() and all(r.status == 200 for r in _burst(aws, "DescribeAlarms", 15))


# ---------------------------------------------------------------- pure pieces


def test_rule_parser_precedence_quotes_and_arns() -> None:
    from localaws.patches.cloudwatch_eval import RuleError, parse_rule, rule_children

    assert parse_rule("ALARM(a) OR ALARM(b) AND NOT OK(c)") == (
        "or",
        ("func", "ALARM", "a"),
        ("and", ("func", "ALARM", "b"), ("not", ("func", "OK", "c"))),
    )
    assert parse_rule('(ALARM("my alarm") OR TRUE) AND FALSE') == (
        "and",
        ("or", ("func", "ALARM", "my alarm"), ("const", True)),
        ("const", False),
    )
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"
    assert rule_children(parse_rule(f"INSUFFICIENT_DATA({arn}) OR ALARM(y)")) == [arn, "y"]
    for bad in ("", "ALARM()", "ALARM(a) AND", "AND ALARM(a)", "ALARM(a))", "alarm(a)"):
        with pytest.raises(RuleError):
            parse_rule(bad)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from localaws.patches.cloudwatch_eval import default_settings

    assert default_settings().to_json() == {"enabled": False, "tickSeconds": 10.0, "delaySeconds": 0.0}
    monkeypatch.setenv("LOCALAWS_ALARM_EVALUATION", "1")
    monkeypatch.setenv("LOCALAWS_ALARM_TICK", "2.5")
    monkeypatch.setenv("LOCALAWS_ALARM_DELAY", "5")
    assert default_settings().to_json() == {"enabled": True, "tickSeconds": 2.5, "delaySeconds": 5.0}


def test_low_sample_percentiles_can_be_ignored(aws: LocalAws) -> None:
    cw = aws.client("cloudwatch")
    t = base_time()
    put_values(cw, [(t - 30, 100.0), (t - 29, 1.0)])  # 2 samples: p99 needs 1000 to be significant
    put_alarm(cw, "evaluate", ExtendedStatistic="p99", Threshold=50.0, EvaluateLowSampleCountPercentile="evaluate")
    put_alarm(cw, "ignore", ExtendedStatistic="p99", Threshold=50.0, EvaluateLowSampleCountPercentile="ignore")
    put_alarm(cw, "default", ExtendedStatistic="p50", Threshold=1.0, ComparisonOperator="LessThanOrEqualToThreshold")
    changes = {c["alarmName"]: c["to"] for c in aws.evaluate_alarms(at=t)}
    assert changes == {"evaluate": "ALARM", "default": "ALARM"}
    assert state(cw, "ignore") == "INSUFFICIENT_DATA"


def test_the_tick_sets_the_evaluation_cadence(aws: LocalAws) -> None:
    try:
        aws.alarm_evaluation(enabled=True, tick_seconds=10)
        time.sleep(0.3)
        before = aws.alarm_evaluation()["ticks"]
        time.sleep(1.0)
        assert aws.alarm_evaluation()["ticks"] == before  # next tick 10 s away
        aws.alarm_evaluation(tick_seconds=0.25)  # a shorter tick applies at once
        start = aws.alarm_evaluation()["ticks"]
        time.sleep(1.0)
        ran = aws.alarm_evaluation()["ticks"] - start
        assert 2 <= ran <= 6, ran
        aws.alarm_evaluation(enabled=False)
        time.sleep(0.3)
        stopped = aws.alarm_evaluation()["ticks"]
        time.sleep(0.6)
        assert aws.alarm_evaluation()["ticks"] == stopped
    finally:
        aws.alarm_evaluation(enabled=False, tick_seconds=10)
