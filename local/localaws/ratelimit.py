"""The Route 53 API rate limit: 5 requests per second per account across all
Route 53 APIs (GetChange polling included). Off by default; when on, a token
bucket answers calls above the rate with `Throttling` (HTTP 400, the
Route 53 REST-XML ErrorResponse), as Route 53 does."""

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
