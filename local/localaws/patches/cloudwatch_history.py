"""CloudWatch: alarm history, state kept on update, DescribeAlarms filters.

moto 5.2.5 has no DescribeAlarmHistory, which the end-of-bake alarm gate
reads ("was any alarm in ALARM since the weight change?"). This module

- records an `AlarmHistoryItem` on every alarm state change (SetAlarmState
  or any other path through `Alarm.update_state`): `HistoryItemType`
  `StateUpdate`, `HistorySummary` "Alarm updated from OK to ALARM",
  `HistoryData` JSON shaped like AWS's (`version`, `oldState`, `newState`
  with `stateValue`, `stateReason`, `stateReasonData`), and a
  `ConfigurationUpdate` item when PutMetricAlarm creates or updates an alarm;
  the history outlives the alarm, as in AWS;
- adds the DescribeAlarmHistory operation to moto's CloudWatch responses, so
  it answers over query and JSON (boto3) and over RPC v2 CBOR (the Rust SDK,
  through `cbor_front`), with AlarmName, AlarmTypes, HistoryItemType,
  StartDate, EndDate, MaxRecords, NextToken and ScanBy;
- keeps an alarm's state when PutMetricAlarm updates an existing alarm (moto
  replaced the alarm and reset it to OK; AWS leaves the state unchanged),
  and starts a new one in INSUFFICIENT_DATA (moto: OK);
- makes DescribeAlarms apply StateValue together with AlarmNames or
  AlarmNamePrefix (moto used only the first filter it found);
- filters DescribeAlarms and DescribeAlarmHistory by AlarmTypes, metric
  alarms only when it is omitted (API Reference of both operations; moto
  returned every type).

Listeners in `STATE_CHANGE_LISTENERS` (the alarm event delivery) are called
after each state change with (alarm, old state dict, new state dict)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import CloudWatchException, InvalidParameterValue
from moto.core.responses import ActionResult

from ..state import STATE

STATE_CHANGE_LISTENERS: list[Callable[[Any, dict[str, Any], dict[str, Any]], None]] = []



class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


def utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def aws_time(dt: datetime) -> str:
    """The timestamp format of alarm history data and alarm events:
    `2019-10-02T17:04:40.989+0000`."""
    d = utc(dt)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def _reason_data(raw: Any) -> Any:
    if raw in (None, "", "{}"):
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def _state_doc(value: str, reason: str, reason_data: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"stateValue": value, "stateReason": reason}
    parsed = _reason_data(reason_data)
    if parsed is not None:
        doc["stateReasonData"] = parsed
    return doc


def _alarm_type(alarm: Any) -> str:
    return "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm"


def add_history(item: dict[str, Any]) -> None:
    with STATE.lock:
        STATE.alarm_history.setdefault(item["AlarmName"], []).append(item)


def _patched_update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
    old = {
        "value": self.state_value,
        "reason": self.state_reason,
        "reasonData": self.state_reason_data,
        "timestamp": self.state_updated_timestamp,
    }
    _original_update_state(self, reason, reason_data, state_value)
    new = {
        "value": self.state_value,
        "reason": self.state_reason,
        "reasonData": self.state_reason_data,
        "timestamp": self.state_updated_timestamp,
    }
    if old["value"] == new["value"]:
        # AWS records (and announces) transitions only.
        return
    add_history(
        {
            "AlarmName": self.name,
            "AlarmType": _alarm_type(self),
            "Timestamp": utc(new["timestamp"]),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old['value']} to {new['value']}",
            "HistoryData": json.dumps(
                {
                    "version": "1.0",
                    "oldState": _state_doc(old["value"], old["reason"], old["reasonData"]),
                    "newState": _state_doc(new["value"], new["reason"], new["reasonData"]),
                },
                separators=(",", ":"),
            ),
        }
    )
    for listener in list(STATE_CHANGE_LISTENERS):
        listener(self, old, new)


def _patched_put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    previous = self.alarms.get(name)
    alarm = _original_put_metric_alarm(self, name, *args, **kwargs)
    if previous is None:
        # PutMetricAlarm (API Reference): "When this operation creates an
        # alarm, the alarm state is immediately set to INSUFFICIENT_DATA. The
        # alarm is then evaluated" (`cloudwatch_eval`); moto started it OK.
        alarm.state_value = "INSUFFICIENT_DATA"
    else:
        alarm.state_value = previous.state_value
        alarm.state_reason = previous.state_reason
        alarm.state_reason_data = previous.state_reason_data
        alarm.state_updated_timestamp = previous.state_updated_timestamp
    verb = "updated" if previous is not None else "created"
    add_history(
        {
            "AlarmName": name,
            "AlarmType": _alarm_type(alarm),
            "Timestamp": utc(alarm.configuration_updated_timestamp),
            "HistoryItemType": "ConfigurationUpdate",
            "HistorySummary": f'Alarm "{name}" {verb}',
            "HistoryData": json.dumps(
                {"version": "1.0", "type": "Create" if previous is None else "Update", "createdAlarm": {"alarmName": name}},
                separators=(",", ":"),
            ),
        }
    )
    return alarm


def query_history(
    alarm_name: str | None = None,
    alarm_types: list[str] | None = None,
    history_item_type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    scan_by: str | None = None,
) -> list[dict[str, Any]]:
    with STATE.lock:
        if alarm_name:
            items = list(STATE.alarm_history.get(alarm_name, []))
        else:
            items = [i for lst in STATE.alarm_history.values() for i in lst]
    if alarm_types:
        items = [i for i in items if i["AlarmType"] in alarm_types]
    if history_item_type:
        items = [i for i in items if i["HistoryItemType"] == history_item_type]
    if start is not None:
        items = [i for i in items if i["Timestamp"] >= utc(start)]
    if end is not None:
        items = [i for i in items if i["Timestamp"] <= utc(end)]
    items.sort(key=lambda i: i["Timestamp"], reverse=(scan_by or "TimestampDescending") != "TimestampAscending")
    return items


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))


def describe_alarm_history(self: Any) -> ActionResult:
    max_records = int(self._get_param("MaxRecords") or 100)
    if not 1 <= max_records <= 100:
        raise InvalidParameterValue("MaxRecords must be between 1 and 100")
    token = self._get_param("NextToken")
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise InvalidNextToken("The service returned an error: invalid NextToken")
    items = query_history(
        alarm_name=self._get_param("AlarmName"),
        # DescribeAlarmHistory (API Reference): "If you omit this parameter,
        # only metric alarms are returned."
        alarm_types=self._get_param("AlarmTypes") or ["MetricAlarm"],
        history_item_type=self._get_param("HistoryItemType"),
        start=_as_datetime(self._get_param("StartDate")),
        end=_as_datetime(self._get_param("EndDate")),
        scan_by=self._get_param("ScanBy"),
    )
    page = items[offset : offset + max_records]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + max_records < len(items):
        result["NextToken"] = base64.urlsafe_b64encode(str(offset + max_records).encode()).decode()
    return ActionResult(result)


def _patched_describe_alarms(self: Any) -> ActionResult:
    result = _original_describe_alarms(self)
    data = result.result if hasattr(result, "result") else None
    if not isinstance(data, dict):
        return result
    state_value = self._get_param("StateValue")
    if state_value and (self._get_param("AlarmNames") or self._get_param("AlarmNamePrefix") or self._get_param("ActionPrefix")):
        for key in ("MetricAlarms", "CompositeAlarms"):
            data[key] = [a for a in data.get(key, []) if a.state_value == state_value]
    # DescribeAlarms (API Reference), AlarmTypes: "If you omit this
    # parameter, only metric alarms are returned, even if composite alarms
    # exist in the account."
    types = self._get_param("AlarmTypes") or ["MetricAlarm"]
    if "MetricAlarm" not in types:
        data["MetricAlarms"] = []
    if "CompositeAlarm" not in types:
        data["CompositeAlarms"] = []
    return result


_original_update_state: Any = None
_original_put_metric_alarm: Any = None
_original_describe_alarms: Any = None


def apply() -> None:
    global _original_update_state, _original_put_metric_alarm, _original_describe_alarms
    _original_update_state = cw_models.Alarm.update_state
    _original_put_metric_alarm = cw_models.CloudWatchBackend.put_metric_alarm
    _original_describe_alarms = cw_responses.CloudWatchResponse.describe_alarms
    cw_models.Alarm.update_state = _patched_update_state  # type: ignore[method-assign]  # patches moto's method
    cw_models.CloudWatchBackend.put_metric_alarm = _patched_put_metric_alarm  # type: ignore[method-assign]  # patches moto's method
    cw_responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]  # an action moto lacks
    cw_responses.CloudWatchResponse.describe_alarms = _patched_describe_alarms  # type: ignore[method-assign]  # patches moto's method
