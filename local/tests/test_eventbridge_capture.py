"""The local AWS keeps what PutEvents accepted (control `events`) and can
fail the next entries the way EventBridge reports a failed entry."""

from __future__ import annotations

import json

from localaws import LocalAws


def _entry(detail_type: str, **detail: object) -> dict:
    return {"Source": "ecs-dns-canary", "DetailType": detail_type, "Detail": json.dumps(detail)}


def test_put_events_are_kept_in_order_and_filtered(aws: LocalAws) -> None:
    events = aws.client("events")
    answer = events.put_events(Entries=[_entry("Deployment Started", service="api"), _entry("Deployment Failed", error="X")])
    assert answer["FailedEntryCount"] == 0
    events.put_events(Entries=[{"Source": "other", "DetailType": "x", "Detail": "{}", "EventBusName": "default"}])
    kept = aws.put_events()
    assert [(e["detail-type"], e["detail"]) for e in kept] == [
        ("Deployment Started", {"service": "api"}),
        ("Deployment Failed", {"error": "X"}),
    ]
    assert {e["eventBusName"] for e in kept} == {"default"}
    assert [e["eventId"] for e in kept] == [a["EventId"] for a in answer["Entries"]]
    assert len(aws.put_events(source=None)) == 3
    assert aws.put_events(detail_type="Deployment Failed", since=kept[0]["seq"])[0]["detail"] == {"error": "X"}


def test_fail_next_fails_entries_then_stops_and_reset_clears(aws: LocalAws) -> None:
    events = aws.client("events")
    aws.fail_put_events(1)
    first = events.put_events(Entries=[_entry("Deployment Started"), _entry("Deployment Step Started")])
    assert first["FailedEntryCount"] == 1
    assert first["Entries"][0]["ErrorCode"] == "InternalFailure" and "EventId" in first["Entries"][1]
    assert [e["detail-type"] for e in aws.put_events()] == ["Deployment Step Started"]
    assert events.put_events(Entries=[_entry("Deployment Succeeded")])["FailedEntryCount"] == 0
    aws.fail_put_events(5)
    aws.reset()
    assert aws.put_events() == []
    assert events.put_events(Entries=[_entry("Deployment Succeeded")])["FailedEntryCount"] == 0
