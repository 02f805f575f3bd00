"""Clients of the local world: N client tasks calling `http://<name>:<port>/`
through a DNS resolver, as an application's tasks in a VPC would.

Each client resolves the name with a dnspython stub query to the given
resolver (no cache of its own, like glibc's getaddrinfo without nscd),
follows the CNAME chain in the answer, picks one of the A records at random
and sends `GET /`. Two modes:

- `new-connection`: a fresh resolution and a new TCP connection per request
  (`Connection: close`);
- `keep-alive`: HTTP/1.1 persistent connections; the name is resolved only
  when a connection is opened: the first time, after the connection reached
  `max_connection_age`, after the server closed it (seen before reuse, as
  urllib3 checks a pooled connection) and after an error.

Every request is one JSON line in the log (see `RECORD_FIELDS`), and, when
an endpoint is given, per-version counts and latency go to CloudWatch with
PutMetricData as an application would publish them (see `MetricsPublisher`).
Only loopback addresses are ever contacted: a resolver, a resolved address
or a metrics endpoint outside 127.0.0.0/8 stops the run with
`NonLoopbackAddress`.

Library: `Clients(...).start()`, `.snapshot()` / `.recent()` while it runs,
`.join()` or `.stop()`. CLI: `python -m localaws.clients --help`.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import ipaddress
import json
import math
import os
import random
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

MODES = ("new-connection", "keep-alive")
RECORD_FIELDS = ("t", "tEnd", "client", "mode", "address", "version", "image", "task", "status", "error", "latencyMs", "reused")
ERROR_KINDS = ("dns", "refused", "reset", "timeout", "http")

# CloudWatch User Guide, "High-resolution metrics": StorageResolution=1 keeps
# data at 1-s granularity, so alarms with a 10/20/30-s period can use it.
METRIC_NAMESPACE = "Clients"
METRIC_BUCKET_S = 10
# CloudWatch API Reference, PutMetricData: up to 1000 metrics per request; a
# smaller batch keeps each request small.
METRIC_BATCH = 100
MAX_CNAME_HOPS = 8


class ClientsError(Exception):
    """The run could not go on (the message says why)."""


class NonLoopbackAddress(ClientsError):
    """An address outside 127.0.0.0/8 was given or resolved: never contacted."""


class DnsFailure(Exception):
    """The name did not resolve to any address (NXDOMAIN, SERVFAIL, no A record, timeout)."""


def require_loopback(address: str, what: str) -> str:
    """`address` if it is an IPv4 loopback address, else NonLoopbackAddress naming `what`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise NonLoopbackAddress(f"{what} {address!r} is not an IP address; the clients only contact 127.0.0.0/8") from None
    if ip.version != 4 or not ip.is_loopback:
        raise NonLoopbackAddress(f"{what} {address} is not a loopback address; the clients only contact 127.0.0.0/8 and stop here")
    return address


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def resolve(name: str, resolver: tuple[str, int], timeout: float = 1.0, attempts: int = 2) -> list[str]:
    """The IPv4 addresses of `name` as one stub query to `resolver` answers it.

    Like glibc's stub resolver: one A query with RD set over UDP (TCP when
    the answer is truncated), `attempts` tries of `timeout` seconds, no
    cache. The CNAME chain in the answer section is followed from the query
    name (at most MAX_CNAME_HOPS); the A records of the last name are the
    answer. NXDOMAIN, any other error rcode, an answer without A records and
    a timeout raise DnsFailure. An IP literal is returned as is (getaddrinfo
    does not query for literals).
    """
    try:
        ipaddress.ip_address(name)
        return [name]
    except ValueError:
        pass
    qname = dns.name.from_text(name)
    query = dns.message.make_query(qname, dns.rdatatype.A)
    answer: dns.message.Message | None = None
    last_exc: Exception | None = None
    for _ in range(max(1, attempts)):
        try:
            answer = dns.query.udp(query, resolver[0], port=resolver[1], timeout=timeout)
            if answer.flags & dns.flags.TC:
                answer = dns.query.tcp(query, resolver[0], port=resolver[1], timeout=timeout)
            break
        except (dns.exception.Timeout, OSError, dns.exception.DNSException) as exc:
            last_exc = exc
    if answer is None:
        raise DnsFailure(f"no answer from resolver {resolver[0]}:{resolver[1]} for {name}: {last_exc!r}")
    rcode = answer.rcode()
    if rcode != dns.rcode.NOERROR:
        raise DnsFailure(f"{name}: {dns.rcode.to_text(rcode)}")
    current = qname
    for _ in range(MAX_CNAME_HOPS + 1):
        a = answer.get_rrset(answer.answer, current, dns.rdataclass.IN, dns.rdatatype.A)
        if a is not None:
            return [r.address for r in a]
        cname = answer.get_rrset(answer.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            break
        current = next(iter(cname)).target
    raise DnsFailure(f"{name}: no A record in the answer (last name {current})")


def _classify(exc: BaseException) -> str:
    """The log's error kind for an exception raised by a request."""
    if isinstance(exc, DnsFailure):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    # RemoteDisconnected is a ConnectionResetError: the server closed without answering.
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.IncompleteRead)):
        return "reset"
    return "http"


@dataclass
class _Bucket:
    requests: int = 0
    errors5xx: int = 0
    conn_errors: int = 0
    lat_n: int = 0
    lat_sum: float = 0.0
    lat_min: float = math.inf
    lat_max: float = 0.0
    lat_values: collections.Counter[float] = field(default_factory=collections.Counter)

    def add_latency(self, ms: float) -> None:
        self.lat_n += 1
        self.lat_sum += ms
        self.lat_min = min(self.lat_min, ms)
        self.lat_max = max(self.lat_max, ms)
        self.lat_values[round(ms)] += 1

    def merge(self, other: _Bucket) -> None:
        self.requests += other.requests
        self.errors5xx += other.errors5xx
        self.conn_errors += other.conn_errors
        self.lat_n += other.lat_n
        self.lat_sum += other.lat_sum
        self.lat_min = min(self.lat_min, other.lat_min)
        self.lat_max = max(self.lat_max, other.lat_max)
        self.lat_values.update(other.lat_values)


class MetricsPublisher:
    """Per-version request metrics, put to CloudWatch every `interval` seconds.

    Each finished request is counted in the 10-second bucket of its end time
    (an application counts a request when it completes). Every `interval`
    seconds the buckets that are over are put with PutMetricData, one datum
    per metric, dimension set and bucket, Timestamp = the bucket's start,
    StorageResolution = 1 (CloudWatch User Guide, "High-resolution
    metrics"); `flush()` (at stop) also puts the unfinished last bucket.

    Metrics (namespace `Clients`):
    - `Requests` (Count): [Service, Version] = responses from that version;
      [Service] = every request attempted, connection errors included.
    - `Errors5xx` (Count): responses with status >= 500 (0 is put for every
      bucket with requests, so an alarm sees 0 and not missing data).
      A connection error (refused, reset, timeout, DNS) is *not* a 5xx: no
      version answered it, so it cannot be put under a Version; it goes to
    - `ConnectionErrors` (Count), [Service] only.
    - `Latency` (Milliseconds): StatisticValues (SampleCount, Sum, Minimum,
      Maximum) of the responses' latency; with `latency_values=True` as
      Values/Counts (rounded to 1 ms, at most 150 distinct values a datum,
      the PutMetricData limit) so that percentiles such as p99 work.
    """

    def __init__(
        self,
        service: str,
        endpoint_url: str,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        interval: float = 10.0,
        latency_values: bool = False,
    ) -> None:
        host = urlsplit(endpoint_url).hostname or ""
        if host != "localhost":
            require_loopback(host, "metrics endpoint")
        self.service = service
        self.endpoint_url = endpoint_url
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.access_key = access_key or os.environ.get("AWS_ACCESS_KEY_ID") or "localaws"
        self.secret_key = secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY") or "localaws"
        self.interval = interval
        self.latency_values = latency_values
        self._lock = threading.Lock()
        self._buckets: dict[tuple[int, str | None], _Bucket] = {}
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.put_calls = 0
        self.put_errors: list[str] = []

    def record(self, rec: dict[str, Any]) -> None:
        start = int(rec["tEnd"] // METRIC_BUCKET_S) * METRIC_BUCKET_S
        key = (start, rec["version"] if rec["status"] is not None else None)
        with self._lock:
            b = self._buckets.setdefault(key, _Bucket())
            b.requests += 1
            if rec["status"] is None:
                b.conn_errors += 1
            else:
                if rec["status"] >= 500:
                    b.errors5xx += 1
                b.add_latency(rec["latencyMs"])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clients-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.publish(final=False)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.publish(final=True)

    def _boto(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "cloudwatch",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10),
            )
        return self._client

    def _take(self, final: bool) -> dict[tuple[int, str | None], _Bucket]:
        # A bucket is over once its end is 0.5 s past: requests are recorded
        # right after they end, so nothing more arrives for it.
        cutoff = time.time() - 0.5
        with self._lock:
            keys = [k for k in self._buckets if final or k[0] + METRIC_BUCKET_S <= cutoff]
            return {k: self._buckets.pop(k) for k in keys}

    def data(self, taken: dict[tuple[int, str | None], _Bucket]) -> list[dict[str, Any]]:
        """The PutMetricData MetricData for some buckets (both dimension sets)."""
        per_service: dict[int, _Bucket] = {}
        out: list[dict[str, Any]] = []
        for (start, version), b in sorted(taken.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            per_service.setdefault(start, _Bucket()).merge(b)
            if version is not None:
                out += self._datums(start, [{"Name": "Service", "Value": self.service}, {"Name": "Version", "Value": version}], b, False)
        for start, b in sorted(per_service.items()):
            out += self._datums(start, [{"Name": "Service", "Value": self.service}], b, True)
        return out

    def _datums(self, start: int, dims: list[dict[str, str]], b: _Bucket, service_level: bool) -> list[dict[str, Any]]:
        ts = datetime.fromtimestamp(start, tz=timezone.utc)
        common = {"Dimensions": dims, "Timestamp": ts, "StorageResolution": 1}
        out = [
            {"MetricName": "Requests", "Value": float(b.requests), "Unit": "Count", **common},
            {"MetricName": "Errors5xx", "Value": float(b.errors5xx), "Unit": "Count", **common},
        ]
        if service_level:
            out.append({"MetricName": "ConnectionErrors", "Value": float(b.conn_errors), "Unit": "Count", **common})
        if b.lat_n:
            if self.latency_values:
                items = sorted(b.lat_values.items())
                for i in range(0, len(items), 150):
                    chunk = items[i : i + 150]
                    out.append(
                        {
                            "MetricName": "Latency",
                            "Values": [float(v) for v, _ in chunk],
                            "Counts": [float(c) for _, c in chunk],
                            "Unit": "Milliseconds",
                            **common,
                        }
                    )
            else:
                out.append(
                    {
                        "MetricName": "Latency",
                        "StatisticValues": {"SampleCount": float(b.lat_n), "Sum": b.lat_sum, "Minimum": b.lat_min, "Maximum": b.lat_max},
                        "Unit": "Milliseconds",
                        **common,
                    }
                )
        return out

    def publish(self, final: bool) -> None:
        taken = self._take(final)
        if not taken:
            return
        data = self.data(taken)
        try:
            cw = self._boto()
            for i in range(0, len(data), METRIC_BATCH):
                cw.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data[i : i + METRIC_BATCH])
                self.put_calls += 1
        except Exception as exc:  # noqa: BLE001 - a lost datum must not stop the clients; it is reported
            self.put_errors.append(repr(exc))
            print(f"clients: PutMetricData failed ({exc!r}); those buckets are lost", file=sys.stderr)


@dataclass
class ClientsConfig:
    name: str
    resolver: tuple[str, int]
    port: int
    clients: int = 8
    mode: str = "new-connection"
    rate: float = 20.0
    jitter: float = 0.5
    duration: float = 60.0
    max_requests: int = 100_000
    max_connection_age: float = 60.0
    timeout: float = 2.0
    dns_timeout: float = 1.0
    path: str = "/"


class Clients:
    """N client threads; see the module doc. Bounded by `duration` seconds
    (no request starts after it; one in flight ends within `timeout`) and by
    `max_requests` in total; stops by itself."""

    def __init__(
        self,
        config: ClientsConfig,
        log: str | Path | IO[str] | None = None,
        metrics: MetricsPublisher | None = None,
        seed: int | None = None,
        recent_max: int = 50_000,
    ) -> None:
        if config.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {config.mode!r}")
        if config.clients < 1 or config.rate <= 0 or config.duration <= 0 or config.max_requests < 0:
            raise ValueError("clients >= 1, rate > 0, duration > 0 and max_requests >= 0 are required")
        if not 0 <= config.jitter < 1:
            raise ValueError("jitter is a fraction of the interval in [0, 1)")
        require_loopback(config.resolver[0], "resolver")
        self.config = config
        self.metrics = metrics
        self._rng = random.Random(seed)
        self._own_log = False
        self._log: IO[str] | None
        if log is None:
            self._log = None
        elif isinstance(log, (str, Path)):
            self._log = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed in join()
            self._own_log = True
        else:
            self._log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._remaining = config.max_requests
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=recent_max)
        self._counts: dict[str | None, dict[str, int]] = {}
        self.error: ClientsError | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None  # when the last client ended
        self._joined = False

    # ---- control -------------------------------------------------------
    def start(self) -> Clients:
        self.started_at = time.time()
        self._deadline = time.monotonic() + self.config.duration
        if self.metrics is not None:
            self.metrics.start()
        for i in range(self.config.clients):
            seed = self._rng.getrandbits(64)
            th = threading.Thread(target=self._client_loop, args=(f"c{i}", random.Random(seed)), name=f"client-{i}", daemon=True)
            self._threads.append(th)
            th.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Ask every client to stop after its current request, then join."""
        self._stop.set()
        return self.join()

    def join(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until every client ended (at most `timeout`, default: the
        duration plus the request timeouts), flush metrics and the log, and
        return the counters. Raises the ClientsError that stopped the run."""
        limit = self.config.duration + 2 * (self.config.timeout + self.config.dns_timeout * 2) + 5 if timeout is None else timeout
        end = time.monotonic() + limit
        for th in self._threads:
            th.join(timeout=max(0.0, end - time.monotonic()))
        alive = [th.name for th in self._threads if th.is_alive()]
        if alive:
            self._stop.set()
            raise ClientsError(f"clients still running after {limit:.0f} s: {alive}")
        if not self._joined:
            self._joined = True
            if self.metrics is not None:
                self.metrics.stop()
            if self._log is not None:
                self._log.flush()
                if self._own_log:
                    self._log.close()
        if self.error is not None:
            raise self.error
        return self.snapshot()

    @property
    def running(self) -> bool:
        return any(th.is_alive() for th in self._threads)

    def snapshot(self) -> dict[str, Any]:
        """Counters so far: total requests, requests left of `max_requests`,
        and per version (`"-"` = no response) requests, 5xx, connection
        errors and other errors."""
        with self._lock:
            per = {("-" if v is None else v): dict(c) for v, c in self._counts.items()}
        total = sum(c["requests"] for c in per.values())
        return {"requests": total, "versions": per, "remaining": self._remaining}

    def recent(self, since: float | None = None) -> list[dict[str, Any]]:
        """The latest records (up to `recent_max`), those that ended after `since` when given."""
        with self._lock:
            recs = list(self._recent)
        return recs if since is None else [r for r in recs if r["tEnd"] >= since]

    # ---- one client ----------------------------------------------------
    def _take_slot(self) -> bool:
        with self._lock:
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            return True

    def _client_loop(self, client: str, rng: random.Random) -> None:
        cfg = self.config
        interval = 1.0 / cfg.rate
        next_at = time.monotonic() + rng.uniform(0, interval)  # clients do not start in lockstep
        conn: _Conn | None = None
        try:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if time.monotonic() >= self._deadline:
                    break
                if not self._take_slot():
                    self._stop.set()
                    break
                rec, conn = self._one_request(client, conn, rng)
                self._record(rec)
                # The next start is one interval (± jitter) after the scheduled
                # one; a client that fell behind does not burst to catch up.
                next_at = max(next_at + interval * (1 + rng.uniform(-cfg.jitter, cfg.jitter)), time.monotonic())
        except NonLoopbackAddress as exc:
            self.error = exc
            self._stop.set()
        except Exception as exc:  # noqa: BLE001 - a bug must stop the run loudly, not hang it
            self.error = ClientsError(f"client {client} failed: {exc!r}")
            self._stop.set()
        finally:
            if conn is not None:
                conn.close()
            with self._lock:
                self.ended_at = max(self.ended_at or 0.0, time.time())

    def _open(self, rng: random.Random) -> _Conn:
        cfg = self.config
        addresses = resolve(cfg.name, cfg.resolver, timeout=cfg.dns_timeout)
        for a in addresses:
            require_loopback(a, f"address of {cfg.name}")
        address = rng.choice(addresses)
        hc = http.client.HTTPConnection(address, cfg.port, timeout=cfg.timeout)
        return _Conn(address, hc)

    def _one_request(self, client: str, conn: _Conn | None, rng: random.Random) -> tuple[dict[str, Any], _Conn | None]:
        cfg = self.config
        keep = cfg.mode == "keep-alive"
        t0 = time.time()
        m0 = time.monotonic()
        rec: dict[str, Any] = {
            "t": round(t0, 6),
            "tEnd": None,
            "client": client,
            "mode": cfg.mode,
            "address": None,
            "version": None,
            "image": None,
            "task": None,
            "status": None,
            "error": None,
            "latencyMs": None,
            "reused": False,
        }
        if conn is not None and (not keep or conn.age() >= cfg.max_connection_age or conn.dropped()):
            conn.close()
            conn = None
        try:
            if conn is None:
                conn = self._open(rng)
                rec["address"] = conn.address
                conn.http.connect()
                # As curl and Go's net/http do: no Nagle delay on a small request.
                conn.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                rec["reused"] = True
                rec["address"] = conn.address
            headers = {"Host": f"{cfg.name}:{cfg.port}", "User-Agent": "localaws-clients"}
            if not keep:
                headers["Connection"] = "close"
            conn.http.request("GET", cfg.path, headers=headers)
            resp = conn.http.getresponse()
            body = resp.read()
            rec["status"] = resp.status
            rec["version"] = resp.getheader("X-Version")
            rec["task"] = resp.getheader("X-Task")
            rec["image"] = resp.getheader("X-Image")
            if body and (rec["version"] is None or rec["task"] is None or rec["image"] is None):
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    for k in ("version", "task", "image"):
                        if rec[k] is None and isinstance(doc.get(k), str):
                            rec[k] = doc[k]
            if rec["version"] is None and resp.status < 500:
                rec["error"] = "http"
                rec["detail"] = "answer names no version (no X-Version header, no JSON version)"
            conn.served += 1
            if not keep or conn.http.sock is None:  # server said Connection: close
                conn.close()
                conn = None
        except NonLoopbackAddress:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is a logged request, classified
            rec["error"] = _classify(exc)
            rec["detail"] = f"{type(exc).__name__}: {exc}"[:200]
            if conn is not None:
                conn.close()
                conn = None
        rec["tEnd"] = round(time.time(), 6)
        rec["latencyMs"] = round((time.monotonic() - m0) * 1000, 3)
        return rec, conn

    def _record(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, separators=(",", ":"))
        key = rec["version"] if rec["status"] is not None else None
        with self._lock:
            c = self._counts.setdefault(key, {"requests": 0, "errors5xx": 0, "connErrors": 0, "otherErrors": 0})
            c["requests"] += 1
            if rec["status"] is None:
                c["connErrors"] += 1
            elif rec["status"] >= 500:
                c["errors5xx"] += 1
            elif rec["error"] is not None:
                c["otherErrors"] += 1
            self._recent.append(rec)
            if self._log is not None:
                self._log.write(line + "\n")
        if self.metrics is not None:
            self.metrics.record(rec)


class _Conn:
    """One client's HTTP connection: where it goes, when it was opened, how often used."""

    def __init__(self, address: str, hc: http.client.HTTPConnection) -> None:
        self.address = address
        self.http = hc
        self.opened = time.monotonic()
        self.served = 0

    def age(self) -> float:
        return time.monotonic() - self.opened

    def dropped(self) -> bool:
        """True when the server closed the idle connection (readable = EOF or
        unexpected bytes), checked before reuse as urllib3 does."""
        sock = self.http.sock
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.http.close()
        except OSError:
            pass


def metrics_from_args(args: argparse.Namespace) -> MetricsPublisher | None:
    if not args.metrics:
        return None
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise ClientsError("--metrics needs --endpoint-url or AWS_ENDPOINT_URL (the local AWS's endpoint; `aws.env()` gives it)")
    return MetricsPublisher(args.service, endpoint, region=args.region, interval=args.metrics_interval, latency_values=args.latency_values)


def _fill_from_world(args: argparse.Namespace) -> None:
    """Fills what was not given from endpoints.json (the shared convention:
    `"dns": {"resolver": "127.0.0.1:P"}`, `"tasks": {"port": N}`, `"endpointUrl"`)."""
    from . import config

    run_dir = Path(args.world) if args.world else config.default_run_dir()
    try:
        doc = json.loads((run_dir / "endpoints.json").read_text())
    except (OSError, ValueError) as exc:
        raise ClientsError(f"--world: no readable {run_dir / 'endpoints.json'} ({exc}); start it with `python -m localaws up`") from None
    if not args.resolver:
        args.resolver = (doc.get("dns") or {}).get("resolver")
    if not args.port:
        args.port = (doc.get("tasks") or {}).get("port")
    if not args.endpoint_url:
        args.endpoint_url = doc.get("endpointUrl")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m localaws.clients", description="Play N client tasks calling http://NAME:PORT/ through a DNS resolver.")
    p.add_argument("--name", required=True, help="DNS name to call (e.g. my-cname.ns-1), or a loopback IP")
    p.add_argument("--resolver", help="resolver HOST:PORT (loopback), e.g. unbound of the local world")
    p.add_argument("--port", type=int, help="TCP port of the tasks")
    p.add_argument("--world", nargs="?", const="", metavar="RUN_DIR",
                   help="take --resolver, --port and the metrics endpoint not given from the running local AWS's "
                        "endpoints.json (dns.resolver, tasks.port, endpointUrl; default run dir .local/run)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--mode", choices=MODES, default="new-connection")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second per client")
    p.add_argument("--jitter", type=float, default=0.5, help="each interval is 1/rate × (1 ± U(0, jitter))")
    p.add_argument("--duration", type=float, default=60.0, help="no request starts after this many seconds")
    p.add_argument("--max-requests", type=int, default=100_000, help="total over all clients")
    p.add_argument("--max-connection-age", type=float, default=60.0, help="keep-alive: reconnect (and re-resolve) after this many seconds")
    p.add_argument("--timeout", type=float, default=2.0, help="connect and read timeout per request, seconds")
    p.add_argument("--dns-timeout", type=float, default=1.0, help="per DNS attempt (2 attempts), seconds")
    p.add_argument("--log", help="JSONL request log (appended)")
    p.add_argument("--service", default="backend", help="Service dimension of the metrics")
    p.add_argument("--metrics", action="store_true", help="PutMetricData to --endpoint-url / AWS_ENDPOINT_URL")
    p.add_argument("--endpoint-url", help="CloudWatch endpoint (loopback); default AWS_ENDPOINT_URL")
    p.add_argument("--region", help="default AWS_REGION / AWS_DEFAULT_REGION / us-east-1")
    p.add_argument("--metrics-interval", type=float, default=10.0, help="seconds between PutMetricData calls")
    p.add_argument("--latency-values", action="store_true", help="Latency as Values/Counts (percentiles) instead of StatisticValues")
    p.add_argument("--live", action="store_true", help="print a one-line summary every second (stderr)")
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    clients: Clients | None = None
    try:
        if args.world is not None:
            _fill_from_world(args)
        if not args.resolver or not args.port:
            raise ClientsError("--resolver and --port are required (or --world with a running local AWS)")
        host, port = parse_host_port(args.resolver)
        cfg = ClientsConfig(
            name=args.name,
            resolver=(host, port),
            port=args.port,
            clients=args.clients,
            mode=args.mode,
            rate=args.rate,
            jitter=args.jitter,
            duration=args.duration,
            max_requests=args.max_requests,
            max_connection_age=args.max_connection_age,
            timeout=args.timeout,
            dns_timeout=args.dns_timeout,
        )
        clients = Clients(cfg, log=args.log, metrics=metrics_from_args(args), seed=args.seed).start()
        if args.live:
            from .clientlog import live_line

            while clients.running:
                time.sleep(1.0)
                now = time.time()
                print(live_line(clients.recent(since=now - 2.0), now), file=sys.stderr, flush=True)
        summary = clients.join()
    except (ClientsError, ValueError) as exc:
        print(f"clients: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if clients is None:
            return 130
        summary = clients.stop()
    assert clients is not None
    elapsed = (clients.ended_at or time.time()) - (clients.started_at or time.time())
    summary["seconds"] = round(elapsed, 3)
    summary["rps"] = round(summary["requests"] / elapsed, 1) if elapsed > 0 else None
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
