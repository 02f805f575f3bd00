"""Step Functions: a Wait state's Timestamp / TimestampPath is a UTC instant.

Amazon States Language, Wait state: "Timestamp ... an absolute time ...
must conform to the RFC3339 profile of ISO 8601, with the further
restrictions that an uppercase T must separate the date and time portions,
and an uppercase Z must denote that a numeric time zone offset is not
present". moto 5.2.5 subtracts the process's *local* naive time
(`datetime.now()`) from that UTC instant, so on a machine whose TZ is not UTC
every wait is off by the offset (the engine's exact drain waits with
TimestampPath). Compute the seconds from UTC instead."""

from __future__ import annotations

import datetime
from typing import Any

_applied = False


def _get_wait_seconds(self: Any, env: Any) -> int:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException

    self.string.eval(env=env)
    timestamp_str: str = env.stack.pop()
    timestamp = self._from_timestamp_string(timestamp=timestamp_str)
    if timestamp is None:
        raise FailureEventException(self._create_failure_event(env, timestamp_str))
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return int((timestamp - now).total_seconds())


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp

    timestamp.Timestamp._get_wait_seconds = _get_wait_seconds  # type: ignore[method-assign]
    _applied = True
