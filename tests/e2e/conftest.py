"""Fixtures of the end-to-end suite: one local AWS for the whole session
(moto + the patches + `cargo lambda watch` serving the five functions) and a
fresh world per test.

- ``aws`` (session): started once in a private run directory, every function
  warmed up once (a function's first call under cargo-lambda is a cold
  ``cargo run``: seconds, minutes if the binary is stale), stopped at the end
  whatever happened (the fixture's ``with`` block; the server also exits with
  this process).
- ``world`` (function): the moto backends and harness state are reset, then
  the article's world is built with service names unique to the test
  (``@pytest.mark.services(n)`` for more than one service). Afterwards every
  execution still running is stopped, and the Route 53 traffic invariants are
  checked over everything the test did.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from canarytest import world as W
from canarytest.e2e import assert_invariants, diagnostics
from localaws import LocalAws
from localaws import lambda_client

FUNCTIONS = ("create-taskset", "set-weight", "check-health", "delete-taskset", "alarm-rollback", "repair")

_counter = itertools.count(1)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def ok_event(alarm: str = "warm-up") -> bytes:
    """A real-shaped `CloudWatch Alarm State Change` event for an alarm going
    to OK: alarm-rollback does nothing with it (used to start the function)."""
    path = W.REPO / "tests" / "fixtures" / "alarm-state-change.event.json"
    event = json.loads(path.read_text())
    event["detail"]["alarmName"] = alarm
    event["detail"]["state"]["value"] = "OK"
    event["detail"]["previousState"]["value"] = "ALARM"
    return json.dumps(event).encode()


def warm_up(aws: LocalAws) -> dict[str, float]:
    """Invokes every function once with an input it refuses at once (or an
    OK-state alarm event), so no test pays cargo-lambda's cold start."""
    took = {}
    for name in FUNCTIONS:
        t = time.monotonic()
        payload = ok_event() if name == "alarm-rollback" else b"{}"
        lambda_client.invoke(aws.lambda_url, name, payload)
        took[name] = round(time.monotonic() - t, 2)
    return took


@pytest.fixture(scope="session")
def aws(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("localaws")
    t0 = time.monotonic()
    # Several unbound caches: the client tests spread clients over them to
    # get independent weighted draws (local/README.md, "One cache, one
    # choice per TTL"); other tests use the first.
    with LocalAws(run_dir=run_dir, resolvers=6) as local:
        started = time.monotonic() - t0
        took = warm_up(local)
        print(f"\nlocal AWS at {local.endpoint_url} (run dir {run_dir}) up in {started:.1f} s; warm-up {took}")
        yield local


def _service_base(node_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", node_name.lower().removeprefix("test_")).strip("-")
    return f"e{next(_counter):02d}-{base[:34].strip('-')}"


@pytest.fixture
def world(aws, request):
    """A fresh world: empty local AWS, then VPC, namespace, zone, state
    machine and the test's own services (names unique in the session)."""
    marker = request.node.get_closest_marker("services")
    count = marker.args[0] if marker else 1
    base = _service_base(request.node.name)
    names = [base] if count == 1 else [f"{base}-{chr(ord('a') + i)}" for i in range(count)]
    aws.reset()
    W.apply_realism(aws)  # issue 12: real AWS behaviours on in every test
    w = W.build(aws, services=tuple(names))
    yield w
    # Executions still running are stopped as a cleanup, not repaired.
    aws.sfn_status_events(False)
    stopped = W.stop_running(w)
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        print(diagnostics(aws, w))
    else:
        assert_invariants(aws)
    if stopped:
        print(f"stopped executions still running after the test: {stopped}")


