"""Fixtures for the harness's own tests: one local AWS per session whose
Step Functions Task invokes and alarm events go to a fake Lambda service
(no Rust build needed), reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_lambda import FakeLambda

from localaws import LocalAws


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
