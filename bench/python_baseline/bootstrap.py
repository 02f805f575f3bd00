"""A minimal Lambda runtime interface loop for a Python handler (what
`awslambdaric` does, without its C extension): import the handler module
(its module-level boto3 clients are built here, during init), then poll the
Runtime API for events, call the handler, post its answer or error.

Usage: python bootstrap.py MODULE.FUNCTION  (or `_HANDLER` in the environment)
with AWS_LAMBDA_RUNTIME_API=host:port, as Lambda's own Python runtime starts."""

from __future__ import annotations

import http.client
import importlib
import json
import os
import sys
import traceback

PREFIX = "/2018-06-01/runtime"


def _error_body(e: BaseException) -> bytes:
    return json.dumps(
        {
            "errorType": getattr(e, "error_type", type(e).__name__),
            "errorMessage": str(e),
            "stackTrace": traceback.format_tb(e.__traceback__),
        }
    ).encode()


def main() -> None:
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    spec = sys.argv[1] if len(sys.argv) > 1 else os.environ["_HANDLER"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    conn = http.client.HTTPConnection(api)
    try:
        module_name, func_name = spec.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as e:  # noqa: BLE001 - reported to the Runtime API as an init error
        conn.request("POST", f"{PREFIX}/init/error", _error_body(e), {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        conn.getresponse().read()
        sys.exit(1)
    while True:
        conn.request("GET", f"{PREFIX}/invocation/next")
        resp = conn.getresponse()
        event = json.loads(resp.read() or b"null")
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        try:
            result = handler(event, None)
        except Exception as e:  # noqa: BLE001 - every handler error goes back to Lambda
            conn.request(
                "POST",
                f"{PREFIX}/invocation/{request_id}/error",
                _error_body(e),
                {"Lambda-Runtime-Function-Error-Type": getattr(e, "error_type", type(e).__name__)},
            )
        else:
            conn.request("POST", f"{PREFIX}/invocation/{request_id}/response", json.dumps(result).encode())
        conn.getresponse().read()


if __name__ == "__main__":
    main()
