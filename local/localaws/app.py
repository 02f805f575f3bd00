"""The WSGI front of the local AWS process. Every request passes here before
moto: control API (`/_localaws/...`), then identification (service,
operation, caller), the Route 53 rate limit, fault rules, the RPC v2 CBOR
front or moto itself, Route 53 change recording, and the call log."""

from __future__ import annotations

import io
import logging
import os
import time
from typing import Any

from . import cbor_front, config, control, errors, route53_recorder
from .faults import FAULTS
from .identify import RequestInfo, identify
from .ratelimit import CLOUDWATCH_LIMIT, ROUTE53_LIMIT, STEPFUNCTIONS_LIMIT
from .state import MOTO_LOCK, STATE, now_iso

LOG = logging.getLogger("localaws.calls")

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# moto's backends are plain Python objects without locks. The functions,
# the interpreter threads and the tests call concurrently (issue 5 runs 20
# deployments at once), so requests are served one at a time, as one atomic
# step each, like a real service's per-request consistency. It also makes the
# Route 53 state recorded after a change the state that change produced.
# LOCALAWS_SERIALIZE=0 turns it off.
SERIALIZE = os.environ.get("LOCALAWS_SERIALIZE", "1") != "0"


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class LocalAwsApp:
    def __init__(self, moto_app: Any) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_localaws"):
            status, headers, body = control.handle(environ, self)
            return self._send(start_response, status, headers, body)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            control.reset_harness()

        body = _read_body(environ)
        info = identify(environ, body)
        started = time.time()
        fault: dict[str, Any] | None = None
        response: tuple[int, list[tuple[str, str]], bytes] | None = None
        rule = None

        if info.service == "route53" and not ROUTE53_LIMIT.allow(info.caller):
            response = errors.for_kind(info, "throttle")
            fault = {"kind": "throttle", "reason": "route53-rate-limit"}
        elif info.service == "cloudwatch" and not CLOUDWATCH_LIMIT.allow(info.operation, config.ACCOUNT_ID, info.region, info.caller):
            response = errors.for_kind(info, "throttle")
            fault = {"kind": "throttle", "reason": "cloudwatch-rate-limit"}
        elif info.service == "stepfunctions" and not STEPFUNCTIONS_LIMIT.allow(info.operation, config.ACCOUNT_ID, info.region, info.caller):
            response = errors.for_kind(info, "throttle")
            fault = {"kind": "throttle", "reason": "stepfunctions-rate-limit"}
        else:
            # The path (REST: zone id, record) and body (JSON/CBOR/query: cluster, service, names) for `resource` rules.
            text = path + "?" + environ.get("QUERY_STRING", "") + body.decode("utf-8", "replace")
            rule = FAULTS.check(info, text)
            if rule is not None:
                fault = {"kind": rule.kind, "rule": rule.id}
                if rule.kind not in errors.APPLIED_KINDS:
                    response = errors.for_kind(info, rule.kind, rule.code, rule.status, rule.message)

        change_entry = None
        if response is None:
            is_change = info.service == "route53" and info.operation == "ChangeResourceRecordSets"
            with MOTO_LOCK if SERIALIZE else _NoLock():
                if info.protocol == "rpc-v2-cbor":
                    response = cbor_front.handle(environ, body, info, self.moto_app)
                else:
                    response = cbor_front.call_wsgi(self.moto_app, environ)
                if is_change and response[0] == 200:
                    change_entry = route53_recorder.record_change(path, body, info.caller)

        if fault is not None and fault["kind"] in errors.APPLIED_KINDS and response is not None:
            # Applied: moto ran the call (and the change log has it); the answer is lost.
            fault["appliedStatus"] = response[0]
            response = errors.for_kind(info, fault["kind"], rule.code if rule else None, rule.status if rule else None,
                                       rule.message if rule else None)
        status, headers, resp_body = response
        entry = self._log(info, status, started, fault)
        if change_entry is not None:
            change_entry["callSeq"] = entry["seq"]
        if fault and fault.get("rule") is not None:
            FAULTS.note_fired(fault["rule"], entry["seq"])
        return self._send(start_response, status, headers, resp_body)

    def _log(self, info: RequestInfo, status: int, started: float, fault: dict[str, Any] | None) -> dict[str, Any]:
        done = time.time()
        entry = STATE.record_call(
            {
                "time": started,
                "timeIso": now_iso(started),
                "service": info.service,
                "operation": info.operation,
                "status": status,
                "caller": info.caller,
                "protocol": info.protocol,
                "durationMs": round((done - started) * 1000, 2),
                "fault": fault,
            }
        )
        LOG.info(
            "%s %s.%s -> %s%s (%s, %.1f ms)",
            entry["seq"],
            info.service,
            info.operation,
            status,
            f" [injected {fault['kind']}]" if fault else "",
            info.caller,
            entry["durationMs"],
        )
        return entry

    @staticmethod
    def _send(start_response: Any, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
        hdrs = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
        hdrs.append(("Content-Length", str(len(body))))
        start_response(f"{status} {STATUS_TEXT.get(status, 'Status')}", hdrs)
        return [body]
