"""Everything the harness keeps beside moto's own backends: logs, fault
rules, the Route 53 rate limit, task-set health plans, alarm history and
event deliveries. One instance (`STATE`) lives in the server process; the
patches and the HTTP front read and write it under its lock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

MAX_LOG = 200_000


def now_iso(epoch: float | None = None) -> str:
    t = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


@dataclass
class HealthPlan:
    """How the stand-in ECS scheduler reports a task set's instances.

    mode: "healthy" (at once), "unhealthy" (never healthy), "slow" (healthy
    after `delay_seconds`)."""

    mode: str = "healthy"
    delay_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "delaySeconds": self.delay_seconds}


@dataclass
class HarnessState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    lambda_url: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    call_seq: int = 0
    # (service, operation) -> number of calls seen since the last reset
    op_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    route53_changes: list[dict[str, Any]] = field(default_factory=list)
    alarm_events_enabled: bool = True
    alarm_event_deliveries: list[dict[str, Any]] = field(default_factory=list)
    # alarm name -> list of AlarmHistoryItem dicts (kept after the alarm is deleted, as AWS does)
    alarm_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # externalId / task set id or ARN -> plan; "next" plans are used by the next CreateTaskSet(s)
    health_plans: dict[str, HealthPlan] = field(default_factory=dict)
    next_health_plans: list[HealthPlan] = field(default_factory=list)
    # task set ARN -> {"instances": [(region, service_id, instance_id)], ...}
    task_set_instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    timers: list[threading.Timer] = field(default_factory=list)

    def record_call(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.call_seq += 1
            key = (entry.get("service", "?"), entry.get("operation", "?"))
            self.op_counts[key] = self.op_counts.get(key, 0) + 1
            entry["seq"] = self.call_seq
            entry["opIndex"] = self.op_counts[key]
            self.calls.append(entry)
            if len(self.calls) > MAX_LOG:
                del self.calls[: len(self.calls) - MAX_LOG]
            return entry

    def clear_logs(self) -> None:
        with self.lock:
            self.calls.clear()
            self.op_counts.clear()
            self.route53_changes.clear()
            self.alarm_event_deliveries.clear()

    def reset(self) -> None:
        """Back to a fresh start (moto's backends are reset separately)."""
        with self.lock:
            self.clear_logs()
            self.call_seq = 0
            self.alarm_history.clear()
            self.health_plans.clear()
            self.next_health_plans.clear()
            self.task_set_instances.clear()
            self.alarm_events_enabled = True
            for t in self.timers:
                t.cancel()
            self.timers.clear()


STATE = HarnessState()

# Serialises access to moto's backends (see app.py). Taken by every request
# that reaches moto and by harness code that reads or changes moto objects
# (control API, scheduler timers). Order: MOTO_LOCK before STATE.lock.
MOTO_LOCK = threading.RLock()
