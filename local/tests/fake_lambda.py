"""A stand-in for `cargo lambda watch` in harness tests: serves the Lambda
Invoke API (`POST /2015-03-31/functions/<name>/invocations`) for Python
handlers and answers exactly as cargo-lambda does: 200 + JSON for a result,
HTTP 500 + `{"errorType", "errorMessage"}` for a function error (no
`X-Amz-Function-Error` header), 404 for an unknown function name (a full
ARN included)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FunctionError(Exception):
    def __init__(self, error_type: str, message: str = ""):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


Handler = Callable[[Any], Any]


def recorder(into: list[Any], answer: Any = None, key: str | None = None) -> Handler:
    """A handler that appends each event (its ``key`` field when given) to
    ``into`` and answers ``answer`` (``{}`` when None)."""

    def handle(event: Any) -> Any:
        into.append(event[key] if key is not None else event)
        return {} if answer is None else answer

    return handle


class FakeLambda:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.invocations: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class _H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                parts = self.path.split("/")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(parts) != 5 or parts[1] != "2015-03-31" or parts[4] != "invocations":
                    return self._send(404, b"")
                name = parts[3]
                handler = fake.handlers.get(name)
                event = json.loads(raw) if raw else None
                with fake._lock:
                    fake.invocations.append({"function": name, "event": event})
                if handler is None:
                    return self._send(404, b"Function not found")
                try:
                    result = handler(event)
                except FunctionError as e:
                    return self._send(500, json.dumps({"errorType": e.error_type, "errorMessage": e.message}).encode())
                return self._send(200, json.dumps(result).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLambda:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, name: str) -> list[Any]:
        with self._lock:
            return [i["event"] for i in self.invocations if i["function"] == name]
