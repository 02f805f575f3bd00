"""A minimal local Lambda service that runs the *release* binaries (what
ships), for the local-AWS benchmarks' second row: `cargo lambda watch`
serves debug builds through `cargo run`.

It serves the Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`)
on a free loopback port. Each function gets execution environments like
Lambda's: a process started on demand (a cold start, against its own
`RuntimeApi`), kept warm after its first invoke, one invoke at a time per
process; a concurrent invoke of a busy function starts another process.
A function error is answered as real Lambda does: HTTP 200 with
`X-Amz-Function-Error: Unhandled` and the error JSON as body."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from common import FUNCTIONS, RELEASE_DIR, lambda_env
from runtime_api import RuntimeApi

INVOKE_PREFIX = "/2015-03-31/functions/"


class Worker:
    """One execution environment: a function process and its Runtime API."""

    def __init__(self, name: str, binary: Path, env: dict[str, str], log: BinaryIO) -> None:
        self.name = name
        self.api = RuntimeApi(wait_for_events=True).start()
        self.api.function_name = name
        full_env = lambda_env(name, self.api.address, "bootstrap", "AWS_Lambda_provided.al2023", env)
        self.proc = subprocess.Popen([str(binary)], env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def invoke(self, payload: bytes, timeout: float) -> dict[str, Any]:
        self.api.events.put(payload)
        try:
            return self.api.answers.get(timeout=timeout)
        except queue.Empty as e:
            raise TimeoutError(f"{self.name}: no answer within {timeout:.0f} s (exit code {self.proc.poll()})") from e

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.api.close()


class MiniLambda:
    def __init__(self, function_env: dict[str, str], log_path: Path, release_dir: Path | None = None, timeout: float = 900.0) -> None:
        self.release_dir = release_dir or RELEASE_DIR
        self.function_env = dict(function_env)
        self.timeout = timeout
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.lock = threading.Lock()
        self.idle: dict[str, list[Worker]] = {f: [] for f in FUNCTIONS}
        self.all: list[Worker] = []
        self.invokes: dict[str, int] = {f: 0 for f in FUNCTIONS}
        self.cold_starts: dict[str, int] = {f: 0 for f in FUNCTIONS}
        svc = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - liveness probe
                self._reply(200, b'{"status":"ok"}')

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b"{}"
                if not (self.path.startswith(INVOKE_PREFIX) and self.path.endswith("/invocations")):
                    self._reply(404, b'{"Type":"User","message":"unknown path"}')
                    return
                name = self.path[len(INVOKE_PREFIX) : -len("/invocations")]
                if name not in svc.idle:
                    self._reply(404, json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode())
                    return
                try:
                    answer = svc.invoke(name, body)
                except Exception as e:  # noqa: BLE001 - the service's own failure
                    self._reply(500, json.dumps({"Type": "Service", "message": str(e)}).encode())
                    return
                payload = json.dumps(answer["payload"]).encode()
                if answer["kind"] == "response":
                    self._reply(200, payload)
                else:
                    self._reply(200, payload, {"X-Amz-Function-Error": "Unhandled"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="mini-lambda", daemon=True)

    def _acquire(self, name: str) -> Worker:
        with self.lock:
            while self.idle[name]:
                w = self.idle[name].pop()
                if w.alive():
                    return w
                w.close()
            self.cold_starts[name] += 1
        w = Worker(name, self.release_dir / name, self.function_env, self.log)
        with self.lock:
            self.all.append(w)
        return w

    def invoke(self, name: str, payload: bytes) -> dict[str, Any]:
        w = self._acquire(name)
        try:
            answer = w.invoke(payload, self.timeout)
        except BaseException:
            w.close()
            raise
        with self.lock:
            self.invokes[name] += 1
            self.idle[name].append(w)
        return answer

    def start(self) -> MiniLambda:
        missing = [f for f in FUNCTIONS if not (self.release_dir / f).exists()]
        if missing:
            raise FileNotFoundError(f"release binaries missing in {self.release_dir}: {', '.join(missing)}")
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            workers, self.all = self.all, []
        for w in workers:
            w.close()
        self.log.close()

    def __enter__(self) -> MiniLambda:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
