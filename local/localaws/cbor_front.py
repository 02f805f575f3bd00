"""Smithy RPC v2 CBOR in front of moto (CloudWatch; any service whose model
also speaks awsJson, e.g. Cloud Map).

`aws-sdk-cloudwatch` (Rust, 1.140) speaks only RPC v2 CBOR:
`POST /service/GraniteServiceVersion20100801/operation/<Op>` with headers
`smithy-protocol: rpc-v2-cbor`, `Content-Type`/`Accept: application/cbor`,
`x-amzn-query-mode: true` and a CBOR body. moto 5.2.5 speaks only awsQuery
and awsJson1_0 for CloudWatch, so the SDK got 404s. Production code keeps the
current SDK; the local AWS learns the protocol. This front:

1. decodes the CBOR input (cbor2; tag-1 timestamps become epoch seconds, byte
   strings base64) into the equivalent awsJson document;
2. sends it through moto's own JSON path (`X-Amz-Target:
   GraniteServiceVersion20100801.<Op>`), so every operation moto implements,
   plus the patched ones (DescribeAlarmHistory), answers;
3. re-encodes moto's JSON answer as CBOR guided by the botocore output shape:
   structures as maps, `null` members omitted, timestamps as tag 1 with a
   double (epoch seconds), `double`/`float` members always as CBOR floats
   (the SDK's decoder refuses an integer there), integers as CBOR integers;
4. answers with `smithy-protocol: rpc-v2-cbor`, `Content-Type:
   application/cbor`, no body for operations without output; errors as the
   same status with a CBOR map `{__type: "<namespace>#<ErrorShape>",
   message}` plus `x-amzn-query-error: <Code>;<Sender|Receiver>` for
   query-compatible services (CloudWatch), which the Rust SDK uses as the
   error code."""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timezone
from typing import Any

import cbor2

from . import errors
from .identify import RequestInfo, service_model

Response = tuple[int, list[tuple[str, str]], bytes]


def call_wsgi(app: Any, environ: dict[str, Any]) -> Response:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = list(headers)
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return captured.get("status", 500), captured.get("headers", []), body


# ----------------------------------------------------------------- decoding


def to_json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        d = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return d.timestamp()
    if isinstance(value, cbor2.CBORTag):
        if value.tag == 1 and isinstance(value.value, (int, float)):
            return float(value.value)
        return to_json_value(value.value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items() if v is not None and v is not cbor2.undefined}
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if value is cbor2.undefined:
        return None
    return value


# ----------------------------------------------------------------- encoding


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        d = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return d.timestamp()
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def encode_shape(value: Any, shape: Any) -> Any:
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in value and value[key] is not None:
                encoded = encode_shape(value[key], member)
                if encoded is not None:
                    out[name] = encoded
            elif name in value and value[name] is not None:
                out[name] = encode_shape(value[name], member)
        return out
    if t == "list":
        return [encode_shape(v, shape.member) for v in value]
    if t == "map":
        return {str(k): encode_shape(v, shape.value) for k, v in value.items()}
    if t == "timestamp":
        return cbor2.CBORTag(1, _epoch(value))
    if t in ("double", "float"):
        return float(value)
    if t in ("integer", "long", "short", "byte"):
        return int(value)
    if t == "boolean":
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)
    if t == "blob":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    return str(value)


# ----------------------------------------------------------------- the front


def _cbor_headers(extra: list[tuple[str, str]] | None = None, body: bool = True) -> list[tuple[str, str]]:
    headers = [("smithy-protocol", "rpc-v2-cbor")]
    if body:
        headers.append(("Content-Type", "application/cbor"))
    return headers + (extra or [])


def _moto_error(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[str, str, str]:
    """(code, message, Sender|Receiver) from moto's awsJson error answer."""
    code, message = "InternalFailure", body.decode("utf-8", "replace")[:500]
    fault = "Receiver" if status >= 500 else "Sender"
    try:
        doc = json.loads(body.decode("utf-8"))
        raw = str(doc.get("__type") or doc.get("code") or code)
        code = raw.split("#")[-1].split(":")[0]
        message = str(doc.get("message") or doc.get("Message") or "")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        pass
    for k, v in headers:
        if k.lower() == "x-amzn-query-error" and ";" in v:
            code, fault = v.split(";", 1)
    return code, message, fault


def handle(environ: dict[str, Any], body: bytes, info: RequestInfo, moto_app: Any) -> Response:
    try:
        model = service_model(info.service)
        op_model = model.operation_model(info.operation)
    except Exception:  # noqa: BLE001 - unknown service or operation
        return errors.render(info, "UnknownOperationException", 404, f"unknown operation {info.operation}")
    if "json" not in model.metadata.get("protocols", []):
        return errors.render(info, "InternalFailure", 500, f"{info.service} has no JSON protocol for moto to answer")
    try:
        params = to_json_value(cbor2.loads(body)) if body else {}
    except Exception as e:  # noqa: BLE001 - malformed CBOR
        return errors.render(info, "SerializationException", 400, f"invalid CBOR body: {e}")

    json_body = json.dumps(params or {}).encode()
    inner = dict(environ)
    for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT", "HTTP_X_AMZN_QUERY_MODE"):
        inner.pop(key, None)
    inner.update(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "CONTENT_TYPE": f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}",
            "CONTENT_LENGTH": str(len(json_body)),
            "HTTP_X_AMZ_TARGET": f"{model.metadata['targetPrefix']}.{info.operation}",
            "wsgi.input": io.BytesIO(json_body),
        }
    )
    if not inner.get("HTTP_AUTHORIZATION"):
        # moto picks the backend from the SigV4 scope; an unsigned call needs one.
        inner["HTTP_AUTHORIZATION"] = (
            f"AWS4-HMAC-SHA256 Credential=localaws/20200101/{info.region}/{model.signing_name}/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
    status, headers, resp = call_wsgi(moto_app, inner)
    request_id = [(k, v) for k, v in headers if k.lower() == "x-amzn-requestid"]
    if status == 200:
        out_shape = op_model.output_shape
        if out_shape is None:
            return 200, _cbor_headers(request_id, body=False), b""
        doc = json.loads(resp.decode("utf-8")) if resp.strip() else {}
        return 200, _cbor_headers(request_id), cbor2.dumps(encode_shape(doc, out_shape))
    code, message, fault = _moto_error(status, headers, resp)
    st, hdrs, b = errors.render(info, code, status, message, fault)
    if request_id:
        hdrs = [(k, v) for k, v in hdrs if k.lower() != "x-amzn-requestid"] + request_id
    return st, hdrs, b
