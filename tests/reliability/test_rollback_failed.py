"""Issue 5, part 2: the rollback itself cannot complete.

Route 53 goes down once the first canary step has moved traffic (green 50 %).
The next step fails, the state machine rolls back, and the rollback's own
weight change fails too. The execution must end `RollbackFailed` (never a
success, never a plain rollback), with a cause that says traffic may still be
split, which slot must get all traffic, which task set to make PRIMARY and
which to delete; and the new task set, which still serves traffic, must not
have been deleted.
"""

from __future__ import annotations

import time

import pytest

import rig


def _deploy_then_break_route53(lane: rig.Lane, kind: str, tag: str, seconds: float | None = None):
    w, svc = lane.service(prefix="rbf")
    aws = lane.aws
    change0 = len(aws.route53_changes())
    req = svc.request(rig.IMAGE, steps=(50, 100), bake=3, ready_poll=1, drain=0, ready_timeout=60)
    arn = rig.start(lane, req, rig.execution_name(tag))
    deadline = time.time() + 120
    while not rig.route53_changes_for(lane, svc, change0):
        assert time.time() < deadline, "the first canary step never changed the weights"
        time.sleep(0.05)
    # Route 53 is down for the functions from now on (every operation).
    if seconds is None:
        aws.fail_calls("route53", "*", kind, first=1, last=None)
    else:
        aws.fail_for("route53", "*", kind, seconds=seconds)
    try:
        desc = rig.wait(lane, arn, timeout=900)
    finally:
        aws.clear_faults()
    return w, svc, desc, change0


def _assert_rollback_failed(lane, w, svc, desc, change0, error_word):
    error, cause = rig.cause_parts(desc)
    assert desc["status"] == "FAILED" and error == "RollbackFailed", (desc["status"], error, cause)
    obs = rig.observe(lane, w, svc, change0)
    new = [t for t in obs.task_sets if t["slot"] == "green"]
    old = [t for t in obs.task_sets if t["slot"] == "blue"]
    assert len(new) == 1 and len(old) == 1, obs.summary()
    # Where traffic really is: split, as the cause warns.
    assert obs.weights == {"blue": 50, "green": 50}, obs.summary()
    # The cause tells the state and what to do, naming slots and task sets.
    for needle in (
        "may still be split",
        "Give the blue slot all traffic by hand",
        f"make task set {old[0]['id']} primary again",
        f"delete the new task set {new[0]['id']}",
        error_word,
    ):
        assert needle in cause, f"cause lacks {needle!r}: {cause}"
    # The new task set still has weight: it was not deleted, old one still PRIMARY.
    assert old[0]["status"] == "PRIMARY" and new[0]["healthy"] > 0, obs.summary()
    assert not rig.change_violations(obs.changes, svc)
    events = rig.history(lane, desc["executionArn"])
    assert "Roll back traffic" in rig.states_entered(events)
    assert "Delete new task set" not in rig.states_entered(events)
    return cause


def test_route53_access_denied_during_rollback_ends_rollback_failed(lane):
    w, svc, desc, change0 = _deploy_then_break_route53(lane, "permanent", "rbf-permanent")
    cause = _assert_rollback_failed(lane, w, svc, desc, change0, "AccessDenied")
    print("\nRollbackFailed cause:", cause)


@pytest.mark.slow
def test_route53_5xx_longer_than_every_retry_ends_rollback_failed(lane):
    """5xx on every Route 53 call for 15 minutes: the step's retries (6) and
    then the rollback's (10) run out."""
    t0 = time.time()
    w, svc, desc, change0 = _deploy_then_break_route53(lane, "5xx", "rbf-5xx", seconds=900)
    cause = _assert_rollback_failed(lane, w, svc, desc, change0, "Retryable")
    retries = [e for e in rig.history(lane, desc["executionArn"]) if e["type"] == "TaskScheduled"]
    print(f"\nRollbackFailed after {time.time() - t0:.0f} s, {len(retries)} task invocations: {cause}")
