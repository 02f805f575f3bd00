"""A boto3 client for the harness tests that does not retry (kept out of
conftest.py: a test module importing `conftest` gets whichever conftest
pytest imported last when several suites are collected together)."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from localaws import LocalAws
from localaws import config as la_config


def no_retry_client(aws: LocalAws, service: str) -> Any:
    """A boto3 client that does not retry, so injected faults reach the test."""
    return aws.client(
        service,
        config=Config(user_agent_extra=la_config.HARNESS_UA_MARKER, retries={"mode": "standard", "total_max_attempts": 1}),
    )
