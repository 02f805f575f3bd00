"""Tasks that serve: every ECS task of the local world is a real HTTP server.

The ECS scheduler stand-in (`patches/ecs_scheduler.py`) starts one
`TaskServer` per task when the task reaches RUNNING and stops it when the
task stops. Each server is a threaded HTTP/1.1 server (keep-alive works) in
this process, bound to its own loopback address 127.x.y.z taken from
127.64.0.0/10 (never 127.0.0.1; never reused within the process, so an
address names one task for the life of the world) on the world's single
task port (one free port chosen when the local AWS starts; endpoints.json
`"tasks": {"port": N}`).

- `GET /`       JSON `{"image", "version", "task", "taskSet", "externalId",
                 "address"}`, headers `X-Image`, `X-Version`, `X-Task`;
                 200, or 500/503 with the image's error rate, after the
                 image's added latency.
- `GET /health` the container health check: 200 while the image's health
                 check passes (and no health plan forces it to fail), else 503.

What an image does is set per image (`IMAGES`, control `POST
/_localaws/images`). A graceful stop (`TaskServer.stop`) is what a container
that handles SIGTERM well does: stop accepting, finish the requests in
flight (each answered with `Connection: close`), close idle keep-alive
connections, and give up on what is left after the stop timeout (SIGKILL).
It is the order of Go's `http.Server.Shutdown` (listeners, then idle
connections, then wait for active ones). The race every such server has
stays: a keep-alive client that sends its next request just as its idle
connection is closed sees the connection closed without an answer
(HTTP clients retry an idempotent request on a reused connection for that
reason). A connection whose next request already arrived is answered.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import random
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger("localaws.tasks")

# The block task addresses come from. 127.0.0.0/8 is all loopback on Linux;
# 127.0.0.1 (where the local AWS, the DNS server and unbound listen) is
# outside it.
TASK_NETWORK = ipaddress.ip_network("127.64.0.0/10")
# How long an idle keep-alive connection stays open (like a web server's
# keep-alive timeout); bounded so no handler thread waits for ever.
KEEPALIVE_IDLE_SECONDS = 60.0
MAX_LATENCY_MS = 60_000


# ------------------------------------------------------------------ images


@dataclass
class ImageBehaviour:
    """What every task of an image does."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    health_check: str = "pass"

    def to_json(self) -> dict[str, Any]:
        return {"errorRate": self.error_rate, "latencyMs": self.latency_ms, "healthCheck": self.health_check}


def image_version(image: str) -> str:
    """The tag of an image reference (`repo/name:v3` -> `v3`); `latest`
    when it has none; the digest when it is pinned by digest."""
    if "@" in image:
        return image.rsplit("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


class ImageRegistry:
    """Per-image behaviour. A key is a full image reference or a tag suffix
    (`:v3`, matching every image whose reference ends with it); the exact
    reference wins over a suffix, a longer suffix over a shorter one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, ImageBehaviour] = {}

    def set(self, image: str, behaviour: ImageBehaviour) -> None:
        if not image:
            raise ValueError('"image" is required (a full image reference or a tag suffix such as ":v3")')
        if not 0.0 <= behaviour.error_rate <= 1.0:
            raise ValueError("errorRate must be within 0..1")
        if not 0 <= behaviour.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latencyMs must be within 0..{MAX_LATENCY_MS}")
        if behaviour.health_check not in ("pass", "fail"):
            raise ValueError('healthCheck must be "pass" or "fail"')
        with self._lock:
            self._by_key[image] = behaviour

    def for_image(self, image: str) -> ImageBehaviour:
        with self._lock:
            if image in self._by_key:
                return self._by_key[image]
            best: tuple[int, ImageBehaviour] | None = None
            for key, behaviour in self._by_key.items():
                suffix = key if key.startswith((":", "@")) else None
                if suffix and image.endswith(suffix) and (best is None or len(suffix) > best[0]):
                    best = (len(suffix), behaviour)
            return best[1] if best else ImageBehaviour()

    def list(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: v.to_json() for k, v in self._by_key.items()}

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()


IMAGES = ImageRegistry()


# ------------------------------------------------------------------ the HTTP server of one task


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client or a stop closes
    server_version = "localaws-task/1"
    timeout = KEEPALIVE_IDLE_SECONDS
    server: _TaskHttpServer

    def parse_request(self) -> bool:
        # A request line was read: the connection is busy until the answer is out.
        if not self.server.task._begin(self.connection):
            self.close_connection = True
            return False
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self.server.task._end(self.connection):
                self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        task = self.server.task
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Image", task.image)
        self.send_header("X-Version", task.version)
        self.send_header("X-Task", task.task_id)
        if task.stopping:
            # SIGTERM received: finish this request, then close (a client
            # on keep-alive must reconnect, and so re-resolve).
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        task = self.server.task
        path = self.path.split("?", 1)[0]
        if path == "/health":
            ok = task.health_passes()
            self._answer(200 if ok else 503, {"status": "pass" if ok else "fail", "task": task.task_id})
            return
        if path != "/":
            self._answer(404, {"error": f"no route {path}", **task.identity()})
            return
        behaviour = IMAGES.for_image(task.image)
        if behaviour.latency_ms > 0:
            time.sleep(min(behaviour.latency_ms, MAX_LATENCY_MS) / 1000.0)
        doc = task.identity()
        status = 200
        if behaviour.error_rate > 0 and random.random() < behaviour.error_rate:
            status = random.choice((500, 503))
            doc["error"] = "error injected by the image's behaviour (localaws /_localaws/images)"
        task.note_request(status)
        self._answer(status, doc)


class _TaskHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, task: TaskServer, address: tuple[str, int]) -> None:
        self.task = task
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered in the accept loop, before the handler thread runs, so
        # a stop that follows shutdown() sees every accepted connection.
        self.task._opened(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets its connection is normal traffic, not a
        # server error worth a traceback in the log.
        LOG.debug("task connection from %s ended with an error", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.task._closed(request)


class TaskServer:
    """The HTTP server of one ECS task."""

    def __init__(self, task_id: str, task_set: str, external_id: str, image: str, address: str, port: int) -> None:
        self.task_id = task_id
        self.task_set = task_set
        self.external_id = external_id
        self.image = image
        self.version = image_version(image)
        self.address = address
        self.port = port
        # "fail": a health plan makes the container's health check fail
        # whatever the image does (set_unhealthy / set_task_set_health).
        self.health_override: str | None = None
        self.stopping = False
        self.stopped = False
        self.requests = 0
        self.errors = 0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._cv = threading.Condition()
        self._conns: dict[Any, str] = {}  # socket -> "idle" | "busy" | "closed"
        self._httpd: _TaskHttpServer | None = None
        self._thread: threading.Thread | None = None

    # identity and behaviour

    def identity(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "version": self.version,
            "task": self.task_id,
            "taskSet": self.task_set,
            "externalId": self.external_id,
            "address": self.address,
        }

    def health_passes(self) -> bool:
        if self.health_override == "fail":
            return False
        return IMAGES.for_image(self.image).health_check == "pass"

    def note_request(self, status: int) -> None:
        with self._cv:
            self.requests += 1
            if status >= 500:
                self.errors += 1

    # connection bookkeeping (called by the server and handler threads)

    def _opened(self, sock: Any) -> None:
        with self._cv:
            self._conns[sock] = "idle"

    def _closed(self, sock: Any) -> None:
        with self._cv:
            self._conns.pop(sock, None)
            self._cv.notify_all()

    def _begin(self, sock: Any) -> bool:
        with self._cv:
            if self._conns.get(sock) == "closed":
                return False
            self._conns[sock] = "busy"
            return True

    def _end(self, sock: Any) -> bool:
        """Back to idle; True when the connection must close (stopping)."""
        with self._cv:
            if sock in self._conns and self._conns[sock] != "closed":
                self._conns[sock] = "idle"
            self._cv.notify_all()
            return self.stopping

    # lifecycle

    def start(self) -> None:
        self._httpd = _TaskHttpServer(self, (self.address, self.port))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5}, name=f"task-{self.task_id[:8]}", daemon=True
        )
        self._thread.start()
        self.started_at = time.time()
        LOG.info("task %s serving %s on %s:%d", self.task_id, self.image, self.address, self.port)

    def check_health(self, timeout: float = 2.0) -> bool:
        """The container health check, run as ECS runs it: a request to the
        container's own health endpoint."""
        try:
            conn = http.client.HTTPConnection(self.address, self.port, timeout=timeout)
            try:
                conn.request("GET", "/health", headers={"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                return resp.status == 200
            finally:
                conn.close()
        except (OSError, http.client.HTTPException):
            return False

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Graceful stop, as a container that handles SIGTERM: stop
        accepting (the listening socket closes: new connections are
        refused), close idle keep-alive connections, let in-flight requests
        finish (answered with `Connection: close`) for up to `timeout`
        seconds (ECS's stopTimeout), then close what is left (SIGKILL)."""
        stats: dict[str, Any] = {"task": self.task_id, "closedIdle": 0, "finishedInFlight": 0, "killed": 0}
        if self._httpd is None or self.stopped:
            self.stopped = True
            return stats
        self.stopping = True
        # Stop accepting at once: a listening socket shut down refuses new
        # connections (and resets those queued but not yet accepted); then
        # the accept loop ends and the socket is closed.
        try:
            self._httpd.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._cv:
            busy = sum(1 for state in self._conns.values() if state == "busy")
            stats["closedIdle"] += self._close_idle()
            deadline = time.monotonic() + max(0.0, timeout)
            while any(state in ("busy", "idle") for state in self._conns.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.05))
                # A connection that answered and went idle is closed now.
                self._close_idle()
            for sock, state in list(self._conns.items()):
                if state == "busy":
                    stats["killed"] += 1
                if state != "closed":
                    self._conns[sock] = "closed"
                    _hard_close(sock)
            stats["finishedInFlight"] = max(0, busy - stats["killed"])
        self.stopped = True
        self.stopped_at = time.time()
        LOG.info("task %s stopped: %s", self.task_id, stats)
        return stats

    def _close_idle(self) -> int:
        """Closes idle connections (caller holds the lock). One whose next
        request is already arriving (bytes waiting) is left to be answered,
        with `Connection: close`: closing it would fail a request the
        client already sent."""
        closed = 0
        for sock, state in list(self._conns.items()):
            if state == "idle" and not _has_pending(sock):
                self._conns[sock] = "closed"
                _hard_close(sock)
                closed += 1
        return closed

    def to_json(self) -> dict[str, Any]:
        with self._cv:
            conns = len(self._conns)
        return {
            **self.identity(),
            "port": self.port,
            "healthCheck": "pass" if self.health_passes() else "fail",
            "stopping": self.stopping,
            "stopped": self.stopped,
            "requests": self.requests,
            "errors5xx": self.errors,
            "openConnections": conns,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
        }


def _has_pending(sock: Any) -> bool:
    """True when request bytes wait on the connection. Never blocks: a
    zero-timeout poll first (a socket with a timeout would wait inside
    recv), then a peek to tell data from the peer's close."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):  # the connection is gone (closed: fd -1)
        return False


def _hard_close(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ------------------------------------------------------------------ addresses and the task port


class TaskNetwork:
    """The task port and the address allocator of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.port: int | None = None
        self._reservation: socket.socket | None = None
        # Start at a per-process offset so two local AWS processes on one
        # machine rarely try the same address; a taken one is skipped.
        span = TASK_NETWORK.num_addresses
        self._next = (os.getpid() * 7919 + random.randrange(1 << 16)) % (span - 512) + 256
        self._issued = 0

    def start(self) -> int:
        """Chooses the task port (once). A socket stays bound to
        127.0.0.1:port for the life of the process, so no other process is
        handed the same port by the kernel."""
        with self._lock:
            if self.port is None:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.1", 0))
                self._reservation = s
                self.port = int(s.getsockname()[1])
            return self.port

    def _allocate(self) -> str:
        with self._lock:
            while True:
                self._issued += 1
                if self._issued > TASK_NETWORK.num_addresses:
                    raise RuntimeError("no task address left in 127.64.0.0/10")
                n = self._next % TASK_NETWORK.num_addresses
                self._next += 1
                addr = TASK_NETWORK.network_address + n
                if addr.packed[3] in (0, 255):
                    continue
                return str(addr)

    def serve_task(self, task_id: str, task_set: str, external_id: str, image: str) -> TaskServer:
        """Starts the server of a task on a fresh address (an address in use
        by another process is skipped)."""
        port = self.start()
        last: OSError | None = None
        for _ in range(64):
            server = TaskServer(task_id, task_set, external_id, image, self._allocate(), port)
            try:
                server.start()
                return server
            except OSError as e:  # EADDRINUSE: another process holds it
                last = e
        raise RuntimeError(f"could not bind a task address on port {port}: {last}")

    def info(self) -> dict[str, Any]:
        return {"port": self.start(), "network": str(TASK_NETWORK)}


NETWORK = TaskNetwork()
