"""A CloudWatch client that sends what `aws-sdk-cloudwatch` 1.140 (Rust)
sends: `POST /service/GraniteServiceVersion20100801/operation/<Op>`,
`smithy-protocol: rpc-v2-cbor`, `Content-Type`/`Accept: application/cbor`,
`x-amzn-query-mode: true`, a CBOR body, SigV4 signed for `monitoring`."""

from __future__ import annotations

from typing import Any

import cbor2
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class CborResponse:
    def __init__(self, resp: requests.Response):
        self.status = resp.status_code
        self.headers = resp.headers
        self.raw = resp.content
        # The decoded CBOR document (None for an empty body).
        self.body: Any = cbor2.loads(resp.content) if resp.content else None


def call(endpoint: str, operation: str, params: dict[str, Any], service_name: str = "GraniteServiceVersion20100801") -> CborResponse:
    body = cbor2.dumps(params)
    url = f"{endpoint}/service/{service_name}/operation/{operation}"
    req = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "smithy-protocol": "rpc-v2-cbor",
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
            "x-amzn-query-mode": "true",
            "User-Agent": "aws-sdk-rust/1.3.14 os/linux lang/rust/1.90.0",
            "x-amz-user-agent": "aws-sdk-rust/1.3.14 ua/2.1 api/cloudwatch/1.140.0 os/linux lang/rust/1.90.0 app/localaws-fn",
        },
    )
    SigV4Auth(Credentials("localaws", "localaws"), "monitoring", "us-east-1").add_auth(req)
    prepared = req.prepare()
    resp = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10)
    return CborResponse(resp)
