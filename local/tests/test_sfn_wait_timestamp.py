"""A Wait state's TimestampPath is a UTC instant whatever the process's TZ
(patches/sfn_wait_timestamp.py; the engine's exact drain waits with it)."""

from __future__ import annotations

import datetime
import os
import time

from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import TimestampPath

from localaws.patches import sfn_wait_timestamp


class _Env:
    def __init__(self) -> None:
        self.stack: list[str] = []


class _Path:
    """What $.weights.drain.until evaluates to: pushes the string."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.literal_value = "$.weights.drain.until"

    def eval(self, env: _Env) -> None:
        env.stack.append(self.value)


def test_timestamp_wait_counts_from_utc_in_any_time_zone() -> None:
    sfn_wait_timestamp.apply()
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
    literal = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    w = TimestampPath(_Path(literal))  # type: ignore[arg-type]  # a stand-in for moto's StringExpression
    old = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "America/New_York"  # UTC-5/-4: moto alone would be off by hours
        time.tzset()
        env = _Env()
        seconds = w._get_wait_seconds(env)  # type: ignore[arg-type]  # a stand-in for moto's Environment
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert 28 <= seconds <= 30, seconds
