"""Tells which AWS service and operation an incoming HTTP request is, and who
made it, for the call log, fault rules and the Route 53 rate limit.

Service: from the SigV4 credential scope (every SDK signs), else from the
X-Amz-Target prefix or the RPC v2 CBOR path. Operation: X-Amz-Target suffix
(JSON protocols), the `/service/<S>/operation/<Op>` path (RPC v2 CBOR),
`Action=` (query protocols), or method + path matched against the botocore
model's request URIs (REST protocols such as Route 53)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

import botocore.session

from . import config

# SigV4 signing name -> botocore service name, where they differ.
SIGNING_TO_SERVICE = {
    "monitoring": "cloudwatch",
    "states": "stepfunctions",
    "execute-api": "apigateway",
}

# Friendly names accepted by the control API.
SERVICE_ALIASES = {
    "cloudmap": "servicediscovery",
    "sd": "servicediscovery",
    "sfn": "stepfunctions",
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
    "cw": "cloudwatch",
    "r53": "route53",
}

CBOR_PATH = re.compile(r"^(?:/.*)?/service/([^/]+)/operation/([^/]+)/?$")

_session_lock = threading.Lock()
_session: Any = None


def botocore_session() -> Any:
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session


@lru_cache(maxsize=None)
def service_model(name: str) -> Any:
    return botocore_session().get_service_model(name)


@lru_cache(maxsize=None)
def target_prefix_map() -> dict[str, str]:
    """X-Amz-Target prefix / RPC v2 service shape name -> service name, for
    the services the project uses plus a few common ones."""
    out = {}
    for name in (
        "ecs",
        "servicediscovery",
        "stepfunctions",
        "cloudwatch",
        "events",
        "logs",
        "dynamodb",
        "sqs",
    ):
        try:
            prefix = service_model(name).metadata.get("targetPrefix")
        except Exception:  # noqa: BLE001 - a missing model only loses a name
            continue
        if prefix:
            out[prefix] = name
    return out


def canonical_service(name: str) -> str:
    n = name.strip().lower()
    return SERVICE_ALIASES.get(n, n)


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str, int, str]]:
    """(method, path regex, operation, specificity, query template) for a REST
    service, most specific first."""
    model = service_model(service)
    routes = []
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        literal = len(re.sub(r"\{[^}]+\}", "", path))
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{") and part.endswith("+}"):
                pattern += r".+"
            elif part.startswith("{"):
                pattern += r"[^/]+"
            else:
                pattern += re.escape(part)
        pattern = "^" + pattern.rstrip("/") + "/?$"
        # a literal query key in the template (e.g. `?tagging`) is more specific
        routes.append((http.get("method", "GET"), re.compile(pattern), op_name, literal + (100 if query else 0), query))
    routes.sort(key=lambda r: -r[3])
    return routes


def rest_operation(service: str, method: str, path: str, query_string: str) -> str | None:
    try:
        routes = _rest_routes(service)
    except Exception:  # noqa: BLE001
        return None
    qkeys = set(parse_qs(query_string, keep_blank_values=True).keys())
    for m, pattern, op, _spec, q in routes:
        if m != method or not pattern.match(path):
            continue
        if q:
            needed = {kv.split("=", 1)[0] for kv in q.split("&") if kv}
            if not needed <= qkeys:
                continue
        return op
    return None


@dataclass
class RequestInfo:
    service: str
    operation: str
    protocol: str  # json | query | rest-xml | rest-json | rpc-v2-cbor | ec2 | unknown
    caller: str  # function | harness | rust | python | other
    region: str
    user_agent: str

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "protocol": self.protocol,
            "caller": self.caller,
        }


def classify_caller(user_agent: str) -> str:
    ua = user_agent
    if f"app/{config.FUNCTION_UA_APP_ID}" in ua:
        return "function"
    if config.HARNESS_UA_MARKER in ua:
        return "harness"
    if "aws-sdk-rust" in ua:
        return "rust"
    if "Boto3" in ua or "Botocore" in ua or "botocore" in ua:
        return "python"
    return "other"


def identify(environ: dict[str, Any], body: bytes) -> RequestInfo:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    query_string = environ.get("QUERY_STRING", "")
    auth = environ.get("HTTP_AUTHORIZATION", "")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    ua = environ.get("HTTP_X_AMZ_USER_AGENT", "") + " " + environ.get("HTTP_USER_AGENT", "")
    ctype = environ.get("CONTENT_TYPE", "")

    service = ""
    region = config.REGION
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    if m:
        region = m.group(1)
        service = SIGNING_TO_SERVICE.get(m.group(2).lower(), m.group(2).lower())

    cbor = CBOR_PATH.match(path) if method == "POST" else None
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL", "") == "rpc-v2-cbor":
        svc = target_prefix_map().get(cbor.group(1).split(".")[-1], service or "unknown")
        return RequestInfo(svc, cbor.group(2), "rpc-v2-cbor", classify_caller(ua), region, ua)

    if target and "." in target:
        prefix, op = target.rsplit(".", 1)
        svc = service or target_prefix_map().get(prefix, "unknown")
        return RequestInfo(svc, op, "json", classify_caller(ua), region, ua)

    action = None
    if ctype.startswith("application/x-www-form-urlencoded") and body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    if action is None and query_string:
        action = parse_qs(query_string).get("Action", [None])[0]
    if action:
        proto = "ec2" if service == "ec2" else "query"
        return RequestInfo(service or "unknown", action, proto, classify_caller(ua), region, ua)

    if service:
        try:
            proto = service_model(service).protocol
        except Exception:  # noqa: BLE001
            proto = "unknown"
        op = rest_operation(service, method, path, query_string) if proto.startswith("rest") else None
        return RequestInfo(service, op or f"{method} {path}", proto, classify_caller(ua), region, ua)

    return RequestInfo("unknown", f"{method} {path}", "unknown", classify_caller(ua), region, ua)
