"""Calls the local Lambda service (`cargo lambda watch`, or a fake in tests)
over the Lambda Invoke API, the way moto's Step Functions interpreter and the
alarm event delivery need it.

`cargo lambda watch` knows functions by binary name only (a full ARN in the
path is a 404) and answers a function error with HTTP 500 and the error
JSON as body, where real Lambda answers 200 with `X-Amz-Function-Error`.
`invoke` hides both differences."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from . import config


def function_name(name_or_arn: str) -> str:
    """`arn:aws:lambda:us-east-1:123:function:set-weight[:alias]` -> `set-weight`;
    a plain name stays as it is. A qualifier (`:alias`, `:$LATEST`) is dropped:
    cargo-lambda serves one version."""
    s = name_or_arn.strip()
    if s.startswith("arn:"):
        parts = s.split(":")
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
        return parts[-1]
    # partial ARN `123456789012:function:name` or `name:qualifier`
    if ":function:" in s:
        return s.split(":function:", 1)[1].split(":", 1)[0]
    return s.split(":", 1)[0]


@dataclass
class Invocation:
    status: int  # HTTP status of the local Lambda service
    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed
    error_type: str | None

    def payload_json(self) -> Any:
        text = self.payload.decode("utf-8", "replace")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return text


class LambdaUnavailable(Exception):
    """The local Lambda service could not be reached or did not answer an
    invoke (not a function error)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class FunctionNotFound(Exception):
    pass


def invoke(
    lambda_url: str | None,
    name_or_arn: str,
    payload: bytes | None,
    timeout: float = config.LAMBDA_INVOKE_TIMEOUT_S,
) -> Invocation:
    if not lambda_url:
        raise LambdaUnavailable("no local Lambda service configured (lambda mode 'none')")
    name = function_name(name_or_arn)
    url = urlsplit(lambda_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)
    path = f"/2015-03-31/functions/{quote(name, safe='')}/invocations"
    try:
        conn.request(
            "POST",
            path,
            body=payload if payload is not None else b"{}",
            headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"},
        )
        resp = conn.getresponse()
        body = resp.read()
        status = resp.status
        header_error = resp.getheader("X-Amz-Function-Error")
    except (OSError, http.client.HTTPException) as e:
        raise LambdaUnavailable(f"local Lambda service at {lambda_url} did not answer: {e}") from e
    finally:
        conn.close()

    if status == 404:
        raise FunctionNotFound(f"Function not found: {name} (local Lambda service knows binaries by name)")
    if status == 200 and not header_error:
        return Invocation(status, body, None, None)
    if header_error or status == 500:
        err = _error_type(body)
        if err is not None or header_error:
            return Invocation(status, body, header_error or "Unhandled", err)
    raise LambdaUnavailable(
        f"local Lambda service answered HTTP {status} for {name}: {body[:500].decode('utf-8', 'replace')}",
        status,
    )


def _error_type(body: bytes) -> str | None:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
        return doc["errorType"]
    return None
