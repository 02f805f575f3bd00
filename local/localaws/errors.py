"""Error answers in each AWS protocol's own shape, for injected faults and the
Route 53 rate limit. The SDKs classify errors by these codes (the Rust SDK
retries `Throttling`, `ThrottlingException`, `RequestLimitExceeded`, ... and
any 500/502/503/504 by itself), so each kind uses the code the real service
sends.

Kinds:
- `throttle`: the service's throttling error (HTTP 400).
- `5xx`: `InternalFailure` (500) or, with status 503, `ServiceUnavailable`.
- `permanent`: access denied (HTTP 400 for JSON services, 403 for
  Route 53 / query / CloudWatch), which no SDK retries."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

import cbor2

from .identify import RequestInfo, service_model

KINDS = ("throttle", "5xx", "permanent", "applied-5xx")
# "applied-5xx": the call is applied (moto runs it), then the client gets a
# 500 InternalFailure instead of the answer: the ambiguous failure of a real
# service (the request reached AWS, the answer was lost: a 5xx after the
# write, a timeout, a dropped connection). The AWS SDKs' retry guidance
# (AWS SDKs and Tools Reference Guide, "Retry behavior") retries such an
# error, so the retried write must be idempotent.
APPLIED_KINDS = ("applied-5xx",)

THROTTLE_CODES = {
    "route53": "Throttling",
    "cloudwatch": "Throttling",
    "ec2": "RequestLimitExceeded",
    "sts": "Throttling",
    "iam": "Throttling",
}

Response = tuple[int, list[tuple[str, str]], bytes]


def default_error(info: RequestInfo, kind: str, status: int | None = None) -> tuple[str, int, str, str]:
    """(code, status, message, fault type Sender|Receiver) for a kind."""
    if kind == "throttle":
        code = THROTTLE_CODES.get(info.service, "ThrottlingException")
        return code, status or 400, "Rate exceeded", "Sender"
    if kind in ("5xx", "applied-5xx"):
        st = status or 500
        code = "ServiceUnavailable" if st == 503 else "InternalFailure"
        return code, st, "injected server error", "Receiver"
    if kind == "permanent":
        if info.protocol in ("json", "rest-json") and info.service != "cloudwatch":
            return "AccessDeniedException", status or 400, "injected: not authorized", "Sender"
        return "AccessDenied", status or 403, "injected: not authorized", "Sender"
    raise ValueError(f"unknown fault kind {kind!r}; use one of {KINDS}")


def render(
    info: RequestInfo,
    code: str,
    status: int,
    message: str,
    fault: str = "Sender",
) -> Response:
    request_id = str(uuid.uuid4())
    proto = info.protocol
    if proto == "rpc-v2-cbor":
        body = cbor2.dumps({"__type": qualified_error_type(info.service, code), "message": message})
        headers = [
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
            ("x-amzn-RequestId", request_id),
        ]
        if _query_compatible(info.service):
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        return status, headers, body
    if proto == "json":
        version = _json_version(info.service)
        headers = [
            ("Content-Type", f"application/x-amz-json-{version}"),
            ("x-amzn-RequestId", request_id),
        ]
        if _query_compatible(info.service):
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        return status, headers, json.dumps({"__type": code, "message": message}).encode()
    if proto == "rest-json":
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
        return status, headers, json.dumps({"message": message, "Message": message}).encode()
    if proto == "ec2":
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return status, [("Content-Type", "text/xml")], text.encode()
    # rest-xml (Route 53) and query: the ErrorResponse envelope.
    xmlns = ' xmlns="https://route53.amazonaws.com/doc/2013-04-01/"' if info.service == "route53" else ""
    text = (
        '<?xml version="1.0"?>\n'
        f"<ErrorResponse{xmlns}><Error><Type>{fault}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], text.encode()


def for_kind(
    info: RequestInfo,
    kind: str,
    code: str | None = None,
    status: int | None = None,
    message: str | None = None,
) -> Response:
    dcode, dstatus, dmsg, fault = default_error(info, kind, status)
    return render(info, code or dcode, dstatus, message or dmsg, fault)


def qualified_error_type(service: str, code: str) -> str:
    """`__type` for RPC v2 CBOR: the error's absolute shape ID. For a
    query-compatible service the shape name may differ from the legacy code
    (`InvalidParameterValueException` has code `InvalidParameterValue`)."""
    if "#" in code:
        return code
    try:
        model = service_model(service)
    except Exception:  # noqa: BLE001
        return code
    shape_name = error_shape_for_code(service, code) or code
    namespace = _smithy_namespace(model)
    return f"{namespace}#{shape_name}" if namespace else shape_name


@lru_cache(maxsize=None)
def error_shape_for_code(service: str, code: str) -> str | None:
    """The error shape named `code`, else the one whose legacy query code is
    `code` (several shapes can share a code: `DashboardNotFoundError` and
    `ResourceNotFound` both say ResourceNotFound, so the name wins)."""
    model = service_model(service)
    by_code = None
    for shape_name in model.shape_names:
        shape = model.shape_for(shape_name)
        meta: dict[str, Any] = shape.metadata
        if not meta.get("exception"):
            continue
        if shape_name == code:
            return shape_name
        if by_code is None and (meta.get("error") or {}).get("code") == code:
            by_code = shape_name
    return by_code


def _smithy_namespace(model: Any) -> str:
    # botocore models carry no Smithy namespace; AWS services use
    # com.amazonaws.<sdk id lower-cased, no spaces>.
    known = {"cloudwatch": "com.amazonaws.cloudwatch", "servicediscovery": "com.amazonaws.servicediscovery"}
    return known.get(model.service_name, "com.amazonaws." + model.service_id.hyphenize().replace("-", ""))


def _query_compatible(service: str) -> bool:
    try:
        return "awsQueryCompatible" in service_model(service).metadata
    except Exception:  # noqa: BLE001
        return False


def _json_version(service: str) -> str:
    try:
        return service_model(service).metadata.get("jsonVersion", "1.1")
    except Exception:  # noqa: BLE001
        return "1.1"
