"""Fixtures for the harness's own tests: one local AWS per session whose
Step Functions Task invokes and alarm events go to a fake Lambda service
(no Rust build needed), reset before every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_lambda import FakeLambda  # noqa: E402

from localaws import LocalAws  # noqa: E402
from localaws import config as la_config  # noqa: E402


@pytest.fixture(scope="session")
def fake_lambda() -> Iterator[FakeLambda]:
    with FakeLambda() as fake:
        yield fake


@pytest.fixture(scope="session")
def session_aws(tmp_path_factory: pytest.TempPathFactory, fake_lambda: FakeLambda) -> Iterator[LocalAws]:
    run_dir = tmp_path_factory.mktemp("localaws-run")
    with LocalAws(run_dir=run_dir, lambda_mode="url", lambda_url=fake_lambda.url, start_timeout=60) as aws:
        yield aws


@pytest.fixture()
def aws(session_aws: LocalAws, fake_lambda: FakeLambda) -> LocalAws:
    session_aws.reset()
    session_aws.point_lambda(fake_lambda.url)
    fake_lambda.handlers.clear()
    with fake_lambda._lock:
        fake_lambda.invocations.clear()
    return session_aws


def no_retry_client(aws: LocalAws, service: str):
    """A boto3 client that does not retry, so injected faults reach the test."""
    return aws.client(
        service,
        config=Config(user_agent_extra=la_config.HARNESS_UA_MARKER, retries={"mode": "standard", "total_max_attempts": 1}),
    )
