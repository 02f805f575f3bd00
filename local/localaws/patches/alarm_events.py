"""CloudWatch alarm state change events, delivered to `alarm-rollback`.

In AWS, CloudWatch sends a `CloudWatch Alarm State Change` event to
EventBridge on every state transition and a rule delivers it to the
alarm-rollback function within about a second. moto has neither the event
nor the delivery, so on each transition (see `cloudwatch_history`) this
module builds the event exactly as EventBridge would send it (`version`,
`id`, `detail-type`, `source: aws.cloudwatch`, `account`, `time`, `region`,
`resources: [alarm ARN]`, `detail: {alarmName, state, previousState,
configuration}`) and invokes the function on the local Lambda service from a
background thread, as an asynchronous invoke would. Each delivery is logged
(emitted, delivered, latency, result) and readable through the control API.

Switchable: `STATE.alarm_events_enabled = False` (control API
`/_localaws/alarm-events`) drops events, simulating a lost event so the
end-of-bake history check can be tested as the safety net."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from .. import config, lambda_client
from ..state import STATE, now_iso
from .cloudwatch_history import STATE_CHANGE_LISTENERS, aws_time

LOG = logging.getLogger("localaws.alarm_events")


def _configuration(alarm: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {}
    if getattr(alarm, "description", None):
        conf["description"] = alarm.description
    if getattr(alarm, "rule", None):
        conf["alarmRule"] = alarm.rule
        # Composite alarms with an actions suppressor carry it in the event
        # (CloudWatch User Guide, "Alarm events and EventBridge").
        for attr, key in (
            ("actions_suppressor", "actionsSuppressor"),
            ("actions_suppressor_wait_period", "actionsSuppressorWaitPeriod"),
            ("actions_suppressor_extension_period", "actionsSuppressorExtensionPeriod"),
        ):
            value = getattr(alarm, attr, None)
            if value is not None:
                conf[key] = value
        return conf
    metrics = []
    if getattr(alarm, "metric_name", None):
        metric: dict[str, Any] = {"namespace": alarm.namespace, "name": alarm.metric_name}
        dims = {d.name: d.value for d in getattr(alarm, "dimensions", [])}
        if dims:
            metric["dimensions"] = dims
        stat: dict[str, Any] = {"metric": metric, "period": alarm.period, "stat": alarm.statistic or alarm.extended_statistic}
        if getattr(alarm, "unit", None):
            stat["unit"] = alarm.unit
        metrics.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)), "metricStat": stat, "returnData": True})
    for q in getattr(alarm, "metric_data_queries", []) or []:
        entry: dict[str, Any] = {"id": q.id, "returnData": bool(q.return_data if q.return_data is not None else True)}
        if getattr(q, "expression", None):
            entry["expression"] = q.expression
        if getattr(q, "label", None):
            entry["label"] = q.label
        metrics.append(entry)
    conf["metrics"] = metrics
    return conf


def _state(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"value": doc["value"], "reason": doc["reason"] or ""}
    if doc.get("reasonData") not in (None, "", "{}"):
        out["reasonData"] = doc["reasonData"]
    out["timestamp"] = aws_time(doc["timestamp"])
    return out


def build_event(alarm: Any, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    account = alarm.alarm_arn.split(":")[4] if alarm.alarm_arn.count(":") >= 5 else config.ACCOUNT_ID
    ts = new["timestamp"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": aws_time(ts)[:19] + "Z",
        "region": alarm.region_name,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": _state(new),
            "previousState": _state(old),
            "configuration": _configuration(alarm),
        },
    }


def deliver(event: dict[str, Any], emitted: float) -> None:
    entry: dict[str, Any] = {
        "alarmName": event["detail"]["alarmName"],
        "state": event["detail"]["state"]["value"],
        "previousState": event["detail"]["previousState"]["value"],
        "eventId": event["id"],
        "function": config.ALARM_EVENT_FUNCTION,
        "emittedAt": emitted,
        "emittedAtIso": now_iso(emitted),
    }
    with STATE.lock:
        enabled = STATE.alarm_events_enabled
        lambda_url = STATE.lambda_url
        STATE.alarm_event_deliveries.append(entry)
    if not enabled:
        entry["result"] = "dropped"
        LOG.info("alarm event for %s -> %s dropped (delivery switched off)", entry["alarmName"], entry["state"])
        return
    started = time.time()
    entry["invokedAt"] = started
    try:
        result = lambda_client.invoke(lambda_url, config.ALARM_EVENT_FUNCTION, json.dumps(event).encode())
        entry["result"] = "error" if result.function_error else "ok"
        entry["errorType"] = result.error_type
        entry["response"] = result.payload_json()
    except Exception as e:  # noqa: BLE001 - a failed delivery is logged, never raised
        entry["result"] = "unreachable"
        entry["error"] = str(e)
    done = time.time()
    entry["completedAt"] = done
    entry["deliveryLatencyMs"] = round((started - emitted) * 1000, 3)
    entry["handlerMs"] = round((done - started) * 1000, 3)
    LOG.info(
        "alarm event %s -> %s delivered to %s: %s (delivery %.1f ms, handler %.1f ms)",
        entry["alarmName"],
        entry["state"],
        config.ALARM_EVENT_FUNCTION,
        entry["result"],
        entry["deliveryLatencyMs"],
        entry["handlerMs"],
    )


def on_state_change(alarm: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    event = build_event(alarm, old, new)
    emitted = time.time()
    threading.Thread(target=deliver, args=(event, emitted), name="alarm-event", daemon=True).start()


def apply() -> None:
    if on_state_change not in STATE_CHANGE_LISTENERS:
        STATE_CHANGE_LISTENERS.append(on_state_change)
