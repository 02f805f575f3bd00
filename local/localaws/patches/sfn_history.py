"""Step Functions: GetExecutionHistory honours reverseOrder, maxResults,
nextToken and includeExecutionData.

moto returned every event, oldest first, whatever was asked. AWS returns
pages of `maxResults` events (default 100, at most 1000) with a `nextToken`,
newest first with `reverseOrder`, and leaves out the events' input and output
with `includeExecutionData: false`. The alarm-rollback function reads the
newest `TaskScheduled` of a running bake; code that forgets to page or to
reverse must fail here as it would in AWS."""

from __future__ import annotations

import base64
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions import responses as sfn_responses

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _strip_data(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k not in ("input", "output", "inputDetails", "outputDetails")}
    return out


def _get_execution_history(self: Any) -> ActionResult:
    from moto.stepfunctions.exceptions import InvalidToken, ValidationException

    arn = self._get_param("executionArn")
    result = self.stepfunction_backend.get_execution_history(arn)
    events = list(result.get("events", []) if isinstance(result, dict) else [])
    if self._get_param("reverseOrder"):
        events.reverse()
    if self._get_param("includeExecutionData") is False:
        events = [_strip_data(e) for e in events]
    page = int(self._get_param("maxResults") or DEFAULT_PAGE)
    if page == 0:
        page = DEFAULT_PAGE
    if not 1 <= page <= MAX_PAGE:
        raise ValidationException(f"maxResults must be between 1 and {MAX_PAGE}")
    offset = 0
    token = self._get_param("nextToken")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise InvalidToken("Invalid token")
    out: dict[str, Any] = {"events": events[offset : offset + page]}
    if offset + page < len(events):
        out["nextToken"] = base64.urlsafe_b64encode(str(offset + page).encode()).decode()
    return ActionResult(out)


def apply() -> None:
    sfn_responses.StepFunctionResponse.get_execution_history = _get_execution_history  # type: ignore[method-assign]  # patches moto's method
