"""Fixtures of the reliability suite.

Everything runs against real local AWS processes (moto + cargo lambda watch,
see local/README.md) started here, each in its own temporary run directory,
so the suite never collides with a `localaws up` or another suite's run.

    .venv/bin/python -m pytest -q tests/reliability             # everything
    .venv/bin/python -m pytest -q tests/reliability -m "not slow"  # make test
    .venv/bin/python -m pytest -q tests/reliability -m slow        # the rest

RELIABILITY_LANES (default 4): how many local AWS processes run fault matrix
cases side by side.
"""

from __future__ import annotations

import pytest

import rig


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long reliability runs (whole fault matrix, 20 throttled deployments); `make test-reliability`")


class Lanes:
    """Local AWS lanes, started on first use, stopped at session end."""

    def __init__(self) -> None:
        self.lanes: list[rig.Lane] = []

    def get(self, n: int, concurrency: int = 4) -> list[rig.Lane]:
        from concurrent.futures import ThreadPoolExecutor

        missing = n - len(self.lanes)
        if missing > 0:
            new = [rig.Lane(concurrency=concurrency) for _ in range(missing)]
            self.lanes += new  # registered first: stopped at the end even if a start fails
            with ThreadPoolExecutor(missing) as pool:
                list(pool.map(lambda lane: lane.start().warm(), new))
        return self.lanes[:n]

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


@pytest.fixture(scope="session")
def lanes():
    pool = Lanes()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def lane(lanes: Lanes) -> rig.Lane:
    """The first lane: shared by the tests that need no lane of their own."""
    return lanes.get(1)[0]

