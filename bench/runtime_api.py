"""A tiny Lambda Runtime API (the interface a function's runtime polls), for
measuring init time.

Real Lambda starts the function's process and the runtime inside it calls
`GET /2018-06-01/runtime/invocation/next` once its init is done (for our Rust
functions: logging set up, settings read, every SDK client built; for a
Python function: interpreter up, handler module imported, its module-level
boto3 clients built). The time from process start to that first request is
the init time Lambda reports as `Init Duration`.

This server records the arrival time of every `next` poll (monotonic clock,
`time.perf_counter`, the same clock the caller reads just before starting the
process) and either holds the poll (the caller then ends the process) or
answers it with one queued event and records the function's answer
(`/response` or `/error`), so a run can also check the loop really works.

Only the parts of the API a function uses are served:
  GET  /2018-06-01/runtime/invocation/next
  POST /2018-06-01/runtime/invocation/{id}/response
  POST /2018-06-01/runtime/invocation/{id}/error
  POST /2018-06-01/runtime/init/error
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


class RuntimeApi:
    """One server on a free loopback port; one function process at a time."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, wait_for_events: bool = False) -> None:
        """wait_for_events: a poll with no event queued waits for one (a
        Lambda service serving invokes, see mini_lambda.py) instead of being
        held until `release_held` (init-time runs)."""
        self.wait_for_events = wait_for_events
        self.polls: queue.Queue[float] = queue.Queue()
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: queue.Queue[bytes] = queue.Queue()
        self.function_name = "function"
        self._release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, b'{"errorMessage":"not found"}')
                    return
                arrived = time.perf_counter()
                api.polls.put(arrived)
                event = api._next_event()
                if event is None:
                    # Held poll: the caller ends the process (or releases us).
                    self.close_connection = True
                    return
                request_id = str(uuid.uuid4())
                deadline_ms = int((time.time() + 60) * 1000)
                self._reply(
                    200,
                    event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN.format(name=api.function_name),
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                kind = self.path.rsplit("/", 1)[-1]
                try:
                    payload: Any = json.loads(body) if body else None
                except ValueError:
                    payload = body.decode(errors="replace")
                api.answers.put(
                    {
                        "kind": kind,  # response | error (init/error ends in "error" too)
                        "path": self.path,
                        "errorType": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                        "payload": payload,
                        "time": time.perf_counter(),
                    }
                )
                self._reply(202, b'{"status":"OK"}')

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True)

    def _next_event(self) -> bytes | None:
        if not self.wait_for_events:
            try:
                return self.events.get_nowait()
            except queue.Empty:
                self._release.wait()
                return None
        while not self._release.is_set():
            try:
                return self.events.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def prepare(self, function_name: str, event: dict[str, Any] | None = None) -> None:
        """Before starting a process: empties the queues; `event`, if given,
        is handed to the process's first poll."""
        self.function_name = function_name
        for q in (self.polls, self.answers, self.events):
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        self._release.clear()
        if event is not None:
            self.events.put(json.dumps(event).encode())

    def release_held(self) -> None:
        """Lets every held poll's thread finish (after its process ended)."""
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RuntimeApi:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
