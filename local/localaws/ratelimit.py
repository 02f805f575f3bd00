"""API rate limits. Route 53: 5 requests per second per account across all
Route 53 APIs (GetChange polling included). CloudWatch: DescribeAlarms 9/s
and DescribeAlarmHistory 20/s per account and Region. Off by default; when
on, a token bucket answers calls above the rate with `Throttling` (HTTP 400)
in the protocol of the request (Route 53 REST-XML ErrorResponse; CloudWatch
query ErrorResponse, awsJson, or RPC v2 CBOR with `x-amzn-query-error:
Throttling;Sender`), as the services do."""

from __future__ import annotations

import threading
import time
from typing import Any


class TokenBucket:
    def __init__(self, rate: float = 5.0, burst: float = 5.0) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()
        self.allowed = 0
        self.throttled = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                self.allowed += 1
                return True
            self.throttled += 1
            return False


class Route53Limit:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bucket: TokenBucket | None = None
        self.caller = "any"

    def configure(self, enabled: bool, rate: float = 5.0, burst: float | None = None, caller: str = "any") -> dict[str, Any]:
        with self._lock:
            self.bucket = TokenBucket(rate, burst if burst is not None else rate) if enabled else None
            self.caller = caller
        return self.status()

    def status(self) -> dict[str, Any]:
        b = self.bucket
        if b is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "rate": b.rate,
            "burst": b.burst,
            "caller": self.caller,
            "allowed": b.allowed,
            "throttled": b.throttled,
        }

    def allow(self, caller: str) -> bool:
        b = self.bucket
        if b is None:
            return True
        if self.caller != "any" and caller != self.caller:
            return True
        return b.take()


ROUTE53_LIMIT = Route53Limit()


# CloudWatch service quotas (Amazon CloudWatch User Guide, "CloudWatch
# service quotas"): DescribeAlarms 9 and DescribeAlarmHistory 20
# transactions per second per account and Region, not adjustable. Above
# them CloudWatch answers `Throttling` (HTTP 400, "Rate exceeded").
CLOUDWATCH_RATES = {"DescribeAlarms": 9.0, "DescribeAlarmHistory": 20.0}


class CloudWatchLimit:
    """One token bucket per (operation, account, region) for the limited
    CloudWatch operations. Off by default (the fast default of `make test`);
    `aws.cloudwatch_rate_limit()` turns it on at AWS's rates."""

    DEFAULT_RATES = CLOUDWATCH_RATES

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False
        self.rates: dict[str, float] = dict(self.DEFAULT_RATES)
        self.burst: dict[str, float] = {}
        self.caller = "any"
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def configure(
        self,
        enabled: bool,
        rates: dict[str, float] | None = None,
        burst: dict[str, float] | None = None,
        caller: str = "any",
    ) -> dict[str, Any]:
        with self._lock:
            self.enabled = enabled
            self.rates = dict(self.DEFAULT_RATES)
            for op, rate in (rates or {}).items():
                if float(rate) <= 0:
                    raise ValueError(f"rate for {op} must be > 0")
                self.rates[str(op)] = float(rate)
            self.burst = {str(k): float(v) for k, v in (burst or {}).items()}
            self.caller = caller
            self.buckets = {}
        return self.status()

    def status(self) -> dict[str, Any]:
        with self._lock:
            if not self.enabled:
                return {"enabled": False, "rates": dict(self.rates)}
            counts: dict[str, dict[str, int]] = {}
            for (op, _account, _region), b in self.buckets.items():
                c = counts.setdefault(op, {"allowed": 0, "throttled": 0})
                c["allowed"] += b.allowed
                c["throttled"] += b.throttled
            return {
                "enabled": True,
                "rates": dict(self.rates),
                "burst": {op: self.burst.get(op, rate) for op, rate in self.rates.items()},
                "caller": self.caller,
                "counts": counts,
            }

    def allow(self, operation: str, account: str, region: str, caller: str) -> bool:
        if not self.enabled or operation not in self.rates:
            return True
        if self.caller != "any" and caller != self.caller:
            return True
        key = (operation, account, region)
        with self._lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                rate = self.rates[operation]
                bucket = self.buckets[key] = TokenBucket(rate, self.burst.get(operation, rate))
        return bucket.take()


CLOUDWATCH_LIMIT = CloudWatchLimit()


# Step Functions service quotas (Step Functions Developer Guide, "Step
# Functions service quotas", "Quotas related to API action throttling",
# Standard workflows): a token bucket per account and Region; bucket size /
# refill rate per second in US East (N. Virginia), US West (Oregon) and
# Europe (Ireland): GetExecutionHistory 400 / 20, ListExecutions 200 / 5,
# DescribeExecution 300 / 15, SendTaskFailure / SendTaskSuccess /
# SendTaskHeartbeat 3,000 / 500, StartExecution 1,300 / 300. Above them:
# `ThrottlingException` (HTTP 400).
STEPFUNCTIONS_RATES = {
    "GetExecutionHistory": 20.0,
    "ListExecutions": 5.0,
    "DescribeExecution": 15.0,
    "SendTaskFailure": 500.0,
    "SendTaskSuccess": 500.0,
    "SendTaskHeartbeat": 500.0,
    "StartExecution": 300.0,
}
STEPFUNCTIONS_BURST = {
    "GetExecutionHistory": 400.0,
    "ListExecutions": 200.0,
    "DescribeExecution": 300.0,
    "SendTaskFailure": 3000.0,
    "SendTaskSuccess": 3000.0,
    "SendTaskHeartbeat": 3000.0,
    "StartExecution": 1300.0,
}


class StepFunctionsLimit(CloudWatchLimit):
    """The same token buckets with Step Functions' rates and bucket sizes.
    Off by default; `aws.stepfunctions_rate_limit()` turns it on."""

    DEFAULT_RATES = STEPFUNCTIONS_RATES

    def configure(
        self,
        enabled: bool,
        rates: dict[str, float] | None = None,
        burst: dict[str, float] | None = None,
        caller: str = "any",
    ) -> dict[str, Any]:
        merged = dict(STEPFUNCTIONS_BURST)
        merged.update(burst or {})
        return super().configure(enabled, rates, merged, caller)


STEPFUNCTIONS_LIMIT = StepFunctionsLimit()
