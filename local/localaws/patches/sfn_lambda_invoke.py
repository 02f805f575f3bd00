"""Step Functions Task -> Lambda: invoke through `cargo lambda watch`.

moto's ASL interpreter invokes Lambda through one function,
`lambda_eval_utils._invoke_lambda_function`, with a boto3 client aimed at
moto itself, whose Lambda needs Docker. It is replaced with a call to the
local Lambda service (`lambda_client.invoke`), which

- strips a function ARN to its name (cargo-lambda knows binary names only);
- turns cargo-lambda's HTTP 500 + error JSON into what real Lambda returns,
  a result with `FunctionError: Unhandled`, so moto raises its
  `LambdaFunctionErrorException` and the state fails with the function's
  `errorType` (e.g. `AlarmFiring`, `Retryable`) as error name, which Retry and
  Catch match. Without it the execution fails with `States.Runtime`;
- turns an unreachable service into `Lambda.ServiceException` and an unknown
  function into `Lambda.ResourceNotFoundException`, as real Lambda would.

The same function serves `arn:aws:states:::lambda:invoke` and
`...:lambda:invoke.waitForTaskToken`: with the task token the invoke happens
first, and a function error fails the state before any wait."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from .. import lambda_client
from ..state import STATE

def _client_error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
        },
        "Invoke",
    )


def invoke_via_local_lambda(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    payload = parameters.get("Payload")
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    try:
        result = lambda_client.invoke(STATE.lambda_url, parameters["FunctionName"], payload)
    except lambda_client.FunctionNotFound as e:
        raise _client_error("ResourceNotFoundException", str(e), 404) from e
    except lambda_client.LambdaUnavailable as e:
        raise _client_error("ServiceException", str(e), 500) from e
    response: dict[str, Any] = {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "Payload": result.payload_json(),
    }
    if result.function_error:
        response["FunctionError"] = result.function_error
        if response["Payload"] is None:
            response["Payload"] = {"errorType": "Unhandled", "errorMessage": ""}
    return response


def apply() -> None:
    lambda_eval_utils._invoke_lambda_function = invoke_via_local_lambda
