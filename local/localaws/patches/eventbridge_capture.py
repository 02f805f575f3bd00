"""EventBridge PutEvents: keep what was put, so tests can read it.

The deployment state machine sends its deployment events with Step
Functions' optimized EventBridge integration, `arn:aws:states:::events:putEvents`
(Step Functions Developer Guide, "Call EventBridge with Step Functions"):
the integration turns a JSON `Detail` into a string, appends the state
machine and execution ARNs to each entry's `Resources`, and fails the Task
with `EventBridge.FailedEntry` when the answer has a non-zero
`FailedEntryCount`. moto 5.2.5's interpreter (the LocalStack-derived one,
`execute_state_machine`) already implements that integration
(`state_task_service_events.py`) and calls moto's own EventBridge; moto's
PutEvents delivers to rule targets but keeps nothing when no rule matches,
so a test could not see the events. This wraps `EventsBackend.put_events`:

- every accepted entry is recorded (bus, source, detail-type, parsed detail,
  resources, time, a sequence number), whoever called PutEvents (the state
  machine's integration in process, or any client over HTTP);
- `fail_next(n)` makes the next n entries fail the way EventBridge reports a
  failed entry (EventBridge API Reference, PutEvents: the entry gets
  `ErrorCode`/`ErrorMessage` and `FailedEntryCount` counts it; here
  `InternalFailure`), so a test can show that a failed event send does not
  fail a deployment.

Control API: `GET /_localaws/events?source=&detailType=&since=<seq>` and
`POST /_localaws/events {"failNext": n}` / `{"clear": true}`."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

_lock = threading.Lock()
_events: list[dict[str, Any]] = []
_seq = 0
_fail_next = 0
_failed = 0
_applied = False


def _bus_name(name: str | None) -> str:
    # PutEventsRequestEntry.EventBusName: a name or an ARN; absent = the default bus.
    if not name:
        return "default"
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def _record(account: str, region: str, entry: dict[str, Any], event_id: str) -> None:
    global _seq
    raw = entry.get("Detail")
    try:
        detail = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        detail = raw
    with _lock:
        _seq += 1
        _events.append(
            {
                "seq": _seq,
                "time": time.time(),
                "eventId": event_id,
                "account": account,
                "region": region,
                "eventBusName": _bus_name(entry.get("EventBusName")),
                "source": entry.get("Source"),
                "detail-type": entry.get("DetailType"),
                "detail": detail,
                "resources": list(entry.get("Resources") or []),
            }
        )


def _take_failure() -> bool:
    global _fail_next, _failed
    with _lock:
        if _fail_next <= 0:
            return False
        _fail_next -= 1
        _failed += 1
        return True


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.events.models import EventsBackend

    original = EventsBackend.put_events

    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10:
            return original(self, events)  # moto's own validation error
        results: list[dict[str, Any]] = []
        for entry in events:
            if _take_failure():
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "injected by localaws (failNext)"})
                continue
            answer = original(self, [entry])
            results.extend(answer)
            if answer and "EventId" in answer[0]:
                _record(self.account_id, self.region_name, entry, answer[0]["EventId"])
        return results

    EventsBackend.put_events = put_events  # type: ignore[method-assign]  # patches moto's method
    _applied = True


def fail_next(n: int) -> None:
    global _fail_next
    with _lock:
        _fail_next = max(0, int(n))


def events(source: str | None = None, detail_type: str | None = None, since: int = 0) -> list[dict[str, Any]]:
    with _lock:
        return [
            dict(e)
            for e in _events
            if e["seq"] > since
            and (source is None or e["source"] == source)
            and (detail_type is None or e["detail-type"] == detail_type)
        ]


def last_seq() -> int:
    with _lock:
        return _seq


def reset() -> None:
    global _fail_next, _failed
    with _lock:
        _events.clear()
        _fail_next = 0
        _failed = 0


def status() -> dict[str, Any]:
    with _lock:
        return {"failNext": _fail_next, "failed": _failed, "count": len(_events), "lastSeq": _seq}


def control_route(
    method: str, path: str, query: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    if path != "/_localaws/events":
        return None
    if method == "POST":
        if body.get("clear"):
            reset()
        if "failNext" in body:
            fail_next(int(body["failNext"]))
    found = events(query.get("source"), query.get("detailType"), int(query.get("since", 0) or 0))
    return 200, {**status(), "events": found}
