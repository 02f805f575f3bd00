"""Fault injection: rules that make chosen calls fail.

A rule names a service and an operation (`*` for any), a kind (`throttle`,
`5xx`, `permanent`, see `errors.py`), which matching calls fail, and whose
calls it matches:

- `nth=N`: the N-th matching call after the rule was added;
- `first=N, last=M`: matching calls N..M (inclusive, counted from the rule);
- `seconds=T`: every matching call for T seconds from now;
- `caller`: `function` (default: calls from the Lambda functions, whose
  User-Agent carries `app/localaws-fn`), `any`, `rust`, `python`, `harness`;
- `resource`: only calls whose path or body contains this string (a
  cluster/service name, a hosted zone id, a record name, a task set id):
  scopes a rule to one service's resources while other deployments run.

Kind `applied-5xx` applies the call, then answers 500 (the answer is lost).

The Rust SDK retries throttling and 5xx errors itself (3 attempts in its
standard mode), so a single failed call is usually invisible to a function:
fail a run of calls (first..last) or a time window to make it reach the
function."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import KINDS
from .identify import RequestInfo, canonical_service

CALLERS = ("function", "any", "rust", "python", "harness", "other")


@dataclass
class FaultRule:
    id: int
    service: str
    operation: str
    kind: str
    first: int = 1
    last: int | None = 1
    until: float | None = None
    caller: str = "function"
    code: str | None = None
    status: int | None = None
    message: str | None = None
    resource: str | None = None
    created: float = field(default_factory=time.time)
    seen: int = 0
    fired: list[int] = field(default_factory=list)  # call seqs it failed (filled by the app)

    def matches(self, info: RequestInfo, text: str = "") -> bool:
        if self.service != "*" and info.service != self.service:
            return False
        if self.resource and self.resource not in text:
            return False
        if self.operation != "*" and info.operation.lower() != self.operation.lower():
            return False
        if self.caller == "any":
            return True
        if self.caller == "rust":
            return info.caller in ("rust", "function")
        return info.caller == self.caller

    def should_fail(self) -> bool:
        """Counts one matching call; True when this one must fail."""
        self.seen += 1
        if self.until is not None:
            return time.time() <= self.until
        if self.seen < self.first:
            return False
        return self.last is None or self.seen <= self.last

    def exhausted(self) -> bool:
        if self.until is not None:
            return time.time() > self.until
        return self.last is not None and self.seen >= self.last

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind,
            "first": self.first,
            "last": self.last,
            "until": self.until,
            "caller": self.caller,
            "resource": self.resource,
            "code": self.code,
            "status": self.status,
            "seen": self.seen,
            "fired": list(self.fired),
            "exhausted": self.exhausted(),
        }


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        kind = spec.get("kind", "throttle")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        caller = spec.get("caller", "function")
        if caller not in CALLERS:
            raise ValueError(f"caller must be one of {CALLERS}, not {caller!r}")
        service = canonical_service(str(spec.get("service", "*")))
        operation = str(spec.get("operation", "*"))
        first: int = 1
        last: int | None = 1
        until: float | None = None
        if spec.get("seconds") is not None:
            until = time.time() + float(spec["seconds"])
            last = None
        elif spec.get("nth") is not None:
            first = last = int(spec["nth"])
        elif spec.get("first") is not None or spec.get("last") is not None:
            first = int(spec.get("first", 1))
            last = int(spec["last"]) if spec.get("last") is not None else None
        elif spec.get("times") is not None:
            first, last = 1, int(spec["times"])
        if first < 1 or (last is not None and last < first):
            raise ValueError("need 1 <= first <= last")
        with self._lock:
            rule = FaultRule(
                id=next(self._ids),
                service=service,
                operation=operation,
                kind=kind,
                first=first,
                last=last,
                until=until,
                caller=caller,
                code=spec.get("code"),
                status=int(spec["status"]) if spec.get("status") is not None else None,
                message=spec.get("message"),
                resource=str(spec["resource"]) if spec.get("resource") else None,
            )
            self._rules.append(rule)
            return rule

    def check(self, info: RequestInfo, text: str = "") -> FaultRule | None:
        """The rule that fails this call, if any (`text`: the request's path
        and body, for `resource`). Every matching rule counts the call, so
        concurrent rules keep their own numbering."""
        hit = None
        with self._lock:
            for rule in self._rules:
                if rule.matches(info, text) and rule.should_fail() and hit is None:
                    hit = rule
        return hit

    def note_fired(self, rule_id: int, call_seq: int) -> None:
        with self._lock:
            for r in self._rules:
                if r.id == rule_id:
                    r.fired.append(call_seq)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def remove(self, rule_id: int | None = None) -> int:
        with self._lock:
            before = len(self._rules)
            if rule_id is None:
                self._rules.clear()
            else:
                self._rules = [r for r in self._rules if r.id != rule_id]
            return before - len(self._rules)


FAULTS = FaultBook()
