"""Step Functions execution status change events, delivered to `repair`.

In AWS, Step Functions sends a `Step Functions Execution Status Change`
event to EventBridge whenever a Standard execution's status changes
(Step Functions Developer Guide, "Automating Step Functions event delivery
with EventBridge": source `aws.states`, `resources: [executionArn]`,
`detail: {executionArn, stateMachineArn, name, status, startDate, stopDate,
input, inputDetails, output, outputDetails, error, cause}`, dates in epoch
milliseconds). The system stack's rule (infra/template.yaml,
`RepairRule`) matches ABORTED, TIMED_OUT and FAILED of the deployment state
machine only and invokes the repair function asynchronously. moto has
neither the event nor the rule, so this module watches every execution's
status (a property on moto's parser `Execution`, so the interpreter's end,
StopExecution and a timeout are all seen), builds the event as EventBridge
sends it, applies the rule's filter and invokes the function on the local
Lambda service from a background thread, as an asynchronous invoke would.
Each matched event is logged (emitted, delivered, result) and readable
through the control API `/_localaws/sfn-status-events`, which can also
switch delivery off (a lost event) and redeliver one (EventBridge delivers
at least once). A function error is retried as Lambda retries an
asynchronous invocation (two more attempts; see RETRY_DELAYS_S)."""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any

from .. import config, lambda_client
from ..state import STATE, now_iso

LOG = logging.getLogger("localaws.sfn_status_events")

REPAIR_FUNCTION = "repair"
# The rule's filter (infra/template.yaml RepairRule).
MATCHED_STATUSES = ("ABORTED", "TIMED_OUT", "FAILED")
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# The event is built this long after the status changed: EventBridge
# delivers it asynchronously, after the execution's record is complete.
# (That the record is complete when the status is set is sfn_execution.py's
# patch; the e2e stop tests rely on this delay to lift a fault before the
# repair runs.)
BUILD_DELAY_S = 0.2

# Lambda runs an asynchronous invocation that returns a function error two
# more times, one minute after the first attempt and two minutes after the
# second (Lambda Developer Guide, "Error handling and automatic retries in
# Lambda" / "Configuring error handling for asynchronous invocation":
# MaximumRetryAttempts 0-2, default 2). The delays are a setting: fast by
# default (tests), realistic [60, 120] through the control API.
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0)
REALISTIC_RETRY_DELAYS_S = (60.0, 120.0)

_lock = threading.Lock()
_enabled = True
_retry_delays: tuple[float, ...] = RETRY_DELAYS_S
_deliveries: list[dict[str, Any]] = []


def _millis(t: Any) -> int | None:
    if t is None:
        return None
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return int(t.timestamp() * 1000)
    return None


def _status(execution: Any) -> str | None:
    s = execution.__dict__.get("_localaws_exec_status")
    return getattr(s, "value", s)


def build_event(execution: Any) -> dict[str, Any]:
    arn = execution.exec_arn
    status = _status(execution)
    input_data = getattr(execution, "input_data", None)
    output = getattr(execution, "output", None) if status == "SUCCEEDED" else None
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": getattr(execution, "account_id", config.ACCOUNT_ID),
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": getattr(execution, "region_name", config.REGION),
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _millis(getattr(execution, "start_date", None)),
            "stopDate": _millis(getattr(execution, "stop_date", None)),
            "input": json.dumps(input_data) if input_data is not None else None,
            "inputDetails": {"included": True},
            "output": json.dumps(output) if output is not None else None,
            "outputDetails": {"included": True},
            "error": getattr(execution, "error", None),
            "cause": getattr(execution, "cause", None),
        },
    }


def matches_rule(event: dict[str, Any]) -> bool:
    d = event["detail"]
    return d["status"] in MATCHED_STATUSES and d["stateMachineArn"] == config.STATE_MACHINE_ARN


def deliver(event: dict[str, Any], emitted: float, redelivery: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "executionArn": event["detail"]["executionArn"],
        "status": event["detail"]["status"],
        "eventId": event["id"],
        "function": REPAIR_FUNCTION,
        "emittedAt": emitted,
        "emittedAtIso": now_iso(emitted),
        "redelivery": redelivery,
        "event": event,
    }
    with _lock:
        enabled = _enabled
        _deliveries.append(entry)
    with STATE.lock:
        lambda_url = STATE.lambda_url
    if not enabled and not redelivery:
        entry["result"] = "dropped"
        LOG.info("status event %s %s dropped (delivery switched off)", entry["executionArn"], entry["status"])
        return entry
    started = time.time()
    entry["invokedAt"] = started
    with _lock:
        delays = _retry_delays
    entry["attempts"] = []
    for attempt in range(len(delays) + 1):  # bounded: 1 + the retries
        if attempt:
            time.sleep(delays[attempt - 1])
        a: dict[str, Any] = {"at": time.time()}
        try:
            result = lambda_client.invoke(lambda_url, REPAIR_FUNCTION, json.dumps(event).encode())
            a["result"] = "error" if result.function_error else "ok"
            a["errorType"] = result.error_type
            a["response"] = result.payload_json()
        except Exception as e:  # noqa: BLE001 - a failed delivery is logged, never raised
            a["result"] = "unreachable"
            a["error"] = str(e)
        entry["attempts"].append(a)
        # The entry shows the last attempt's answer.
        entry["result"] = a["result"]
        entry["errorType"] = a.get("errorType")
        entry["response"] = a.get("response")
        if "error" in a:
            entry["error"] = a["error"]
        # Only a function error is retried by Lambda's asynchronous
        # invocation (an unreachable local Lambda service is not AWS).
        if a["result"] != "error":
            break
        LOG.info("status event %s: repair attempt %d failed (%s)", entry["executionArn"], attempt + 1, a.get("errorType"))
    entry["completedAt"] = time.time()
    LOG.info(
        "status event %s %s delivered to %s: %s (%.1f s)",
        entry["executionArn"],
        entry["status"],
        REPAIR_FUNCTION,
        entry["result"],
        entry["completedAt"] - started,
    )
    return entry


def _emit(execution: Any) -> None:
    time.sleep(BUILD_DELAY_S)
    event = build_event(execution)
    if not matches_rule(event):
        return
    deliver(event, time.time())


def _get(self: Any) -> Any:
    return self.__dict__.get("_localaws_exec_status")


def _set(self: Any, value: Any) -> None:
    old = self.__dict__.get("_localaws_exec_status")
    self.__dict__["_localaws_exec_status"] = value
    old_v, new_v = getattr(old, "value", old), getattr(value, "value", value)
    if old_v == "RUNNING" and new_v in TERMINAL:
        threading.Thread(target=_emit, args=(self,), name="sfn-status-event", daemon=True).start()


def control_route(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """GET: deliveries and the switch; POST {"enabled": bool} switches,
    {"retryDelaysSeconds": [60, 120]} sets Lambda's asynchronous retries
    ([] = none), {"redeliver": "<eventId>"} delivers that event again (in
    the background; the new delivery has `redelivery: true`)."""
    global _enabled, _retry_delays
    if path != "/_localaws/sfn-status-events":
        return None
    if method == "POST":
        if "enabled" in body:
            with _lock:
                _enabled = bool(body["enabled"])
        if "retryDelaysSeconds" in body:
            delays = tuple(float(x) for x in body["retryDelaysSeconds"])
            if len(delays) > 2 or any(d < 0 or d > 600 for d in delays):
                return 400, {"error": "retryDelaysSeconds: at most 2 retries (Lambda's MaximumRetryAttempts), each 0-600 s"}
            with _lock:
                _retry_delays = delays
        if body.get("redeliver"):
            with _lock:
                found = next((d for d in _deliveries if d["eventId"] == body["redeliver"]), None)
            if found is None:
                return 404, {"error": f"no delivered event {body['redeliver']}"}
            # Asynchronous like EventBridge (and the control API holds the
            # moto lock, which the function's own calls need).
            threading.Thread(
                target=deliver, args=(found["event"], time.time(), True), name="sfn-status-redelivery", daemon=True
            ).start()
            return 200, {"redelivering": body["redeliver"]}
    with _lock:
        return 200, {"enabled": _enabled, "retryDelaysSeconds": list(_retry_delays), "deliveries": list(_deliveries)}


def reset() -> None:
    global _enabled, _retry_delays
    with _lock:
        _enabled = True
        _retry_delays = RETRY_DELAYS_S
        _deliveries.clear()


def apply() -> None:
    from moto.stepfunctions.parser.backend.execution import Execution

    if not isinstance(Execution.__dict__.get("exec_status"), property):
        Execution.exec_status = property(_get, _set)  # type: ignore[assignment]  # a property over moto's plain attribute
