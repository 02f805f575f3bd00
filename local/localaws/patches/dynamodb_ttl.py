"""DynamoDB: Time to Live deletes expired items, eventually.

moto stores a table's TTL specification (UpdateTimeToLive /
DescribeTimeToLive) but never deletes an expired item. DynamoDB does, in the
background: "DynamoDB automatically deletes expired items within a few days
of their expiration time", and "items that have expired, but haven't yet
been deleted by TTL, still appear in reads, queries, and scans" (Amazon
DynamoDB Developer Guide, "Using time to live (TTL) in DynamoDB" and
"Working with expired items and time to live"). An item expires when its TTL
attribute (a Number, epoch seconds) is below the current time; items whose
attribute is missing, not a Number, or more than five years in the past are
never deleted by TTL.

Emulated here: a sweeper thread deletes the expired items of every table with
TTL ENABLED, each at least `delaySeconds` after its expiry, every
`sweepSeconds`. Until the sweep has run, reads see expired items, as on AWS
(the reader must compare the TTL attribute itself). Fast default: a sweep
every 5 s, no delay; realistic: a delay of hours to days, which no test
waits for (set `{"delaySeconds": 172800}`). A deletion by TTL is not a
write by the caller: it is not in the call log.

Control: GET/POST `/_localaws/dynamodb-ttl` `{"sweepSeconds": 5, "delaySeconds": 0,
"sweepNow": true}`; Python `aws.dynamodb_ttl(...)`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

LOG = logging.getLogger("localaws.dynamodb_ttl")

FIVE_YEARS_S = 5 * 365 * 24 * 3600


class Sweeper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sweep_seconds = 5.0
        self.delay_seconds = 0.0
        self.deleted = 0
        self.sweeps = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def reset(self) -> None:
        with self._lock:
            self.sweep_seconds = 5.0
            self.delay_seconds = 0.0
            self.deleted = 0

    def configure(self, body: dict[str, Any]) -> None:
        with self._lock:
            if "sweepSeconds" in body:
                value = float(body["sweepSeconds"])
                if value <= 0:
                    raise ValueError("sweepSeconds must be > 0")
                self.sweep_seconds = value
            if "delaySeconds" in body:
                self.delay_seconds = max(0.0, float(body["delaySeconds"]))

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sweepSeconds": self.sweep_seconds,
                "delaySeconds": self.delay_seconds,
                "deleted": self.deleted,
                "sweeps": self.sweeps,
            }

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="dynamodb-ttl", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.5):
            if time.monotonic() - last < self.sweep_seconds:
                continue
            last = time.monotonic()
            try:
                self.sweep()
            except Exception:  # a sweep must never kill the thread
                LOG.exception("TTL sweep failed")

    def sweep(self, now: float | None = None) -> int:
        """Deletes the expired items of every TTL-enabled table; returns how many."""
        from moto.dynamodb.models import dynamodb_backends

        from ..state import MOTO_LOCK

        now = time.time() if now is None else now
        cutoff = now - self.delay_seconds
        deleted = 0
        with MOTO_LOCK:
            for _account, regions in list(dynamodb_backends.items()):
                for _region, backend in list(regions.items()):
                    for table in list(backend.tables.values()):
                        spec = getattr(table, "ttl", {}) or {}
                        if spec.get("TimeToLiveStatus") != "ENABLED":
                            continue
                        attr = spec.get("AttributeName")
                        if not attr:
                            continue
                        deleted += _sweep_table(table, attr, cutoff, now)
        with self._lock:
            self.deleted += deleted
            self.sweeps += 1
        if deleted:
            LOG.info("TTL: deleted %d expired item(s)", deleted)
        return deleted


def _expired(item: Any, attr: str, cutoff: float, now: float) -> bool:
    value = item.attrs.get(attr) if hasattr(item, "attrs") else None
    if value is None or getattr(value, "type", None) != "N":
        return False
    try:
        expires = float(value.value)
    except (TypeError, ValueError):
        return False
    # More than five years in the past: not deleted (DynamoDB Developer Guide, TTL).
    return now - FIVE_YEARS_S <= expires < cutoff


def _sweep_table(table: Any, attr: str, cutoff: float, now: float) -> int:
    doomed: list[tuple[Any, Any]] = []
    for hash_key, entry in list(table.items.items()):
        if isinstance(entry, dict):  # a table with a sort key: {range key: item}
            doomed.extend((hash_key, rk) for rk, item in list(entry.items()) if _expired(item, attr, cutoff, now))
        elif _expired(entry, attr, cutoff, now):
            doomed.append((hash_key, None))
    for hash_key, range_key in doomed:
        table.delete_item(hash_key, range_key)
    for hash_key, entry in list(table.items.items()):
        if isinstance(entry, dict) and not entry:
            del table.items[hash_key]
    return len(doomed)


SWEEPER = Sweeper()


def control_route(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """GET/POST /_localaws/dynamodb-ttl {"sweepSeconds", "delaySeconds", "sweepNow"}."""
    if path != "/_localaws/dynamodb-ttl":
        return None
    if method == "POST":
        try:
            SWEEPER.configure(body)
        except (TypeError, ValueError) as e:
            return 400, {"error": str(e)}
        if body.get("sweepNow"):
            n = SWEEPER.sweep(body.get("at"))
            return 200, {**SWEEPER.status(), "sweptNow": n}
    return 200, SWEEPER.status()


def apply() -> None:
    SWEEPER.start()
