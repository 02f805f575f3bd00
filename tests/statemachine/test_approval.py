"""Manual approval (issue 15 item 3), run in moto's ASL interpreter with
canned functions: `strategy.approval.beforeSteps` pauses before the named
steps on a task token (Wait for approval); approve goes on, reject, abort
and an alarm event roll back at once, a timeout does what `onTimeout` says.
A deployment without `strategy.approval` takes exactly the states it took
before approvals existed."""

from __future__ import annotations

import json

import pytest

import harness as h
from harness import CHECK, DELETE, SET_WEIGHT, FakeFunctions
from test_branching import PROMOTE, ROLLBACK, START, STEPS, assert_rolled_back, label, step

APPROVAL = [(CHECK, "approval")]
ROLLBACK_TAIL = ["Roll back traffic", "Drain new task set", "Delete new task set", "Deployment failed"]


def plain_states(out) -> list[str]:
    """The states entered without the deployment events' (issue 16)."""
    return [s for s in out.states_entered() if not s.startswith("Announce ")]


def approval_request(before=(100,), **approval):
    return h.request(approval={"beforeSteps": list(before), **approval})


def test_without_approval_the_states_are_unchanged(sfn):
    """No `strategy.approval`: no approval state is entered, and the number
    of states entered (the transitions Step Functions bills) is the same as
    the plain canary's: Prepare next step -> Shift traffic, as before."""
    out = sfn.run(h.request(), FakeFunctions())
    assert out.status == "SUCCEEDED", out.cause
    entered = out.states_entered()
    assert not {"Prepare next step (approval)", "Approval before this step?", "Wait for approval"} & set(entered)
    assert entered.count("Prepare next step") == len(STEPS)
    # 5 before the canary (create, readiness check, its Choice, First
    # deployment?, Start canary), 7 per step (More steps?, Prepare, Shift,
    # First shift?, Bake this step?, Bake, Check alarms), Remember first
    # shift once, then More steps?, promote, drain, delete, complete: what
    # the definition before approvals took. The deployment events' states
    # (issue 16) come on top: Started, Step Started / Passed per step, Succeeded.
    plain = [e for e in entered if not e.startswith("Announce ")]
    assert len(plain) == 5 + 7 * len(STEPS) + 1 + 5 == 32
    assert len(entered) - len(plain) == 2 + 2 * len(STEPS)


def test_approve_before_100_goes_on(sfn):
    out = sfn.run(approval_request(), FakeFunctions(approvals={3: "approve"}))
    assert out.status == "SUCCEEDED", out.cause
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + step(100) + PROMOTE
    entered = out.states_entered()
    assert entered.count("Wait for approval") == 1
    # Steps 1 and 2 go through the approval Choice without pausing.
    assert entered.count("Approval before this step?") == 3
    wait = [c for c in out.calls if c.state == "Wait for approval"][0]
    assert wait.payload["label"] == f"approval before {label(3)}"
    assert wait.payload["bakeSeconds"] == 3600, "registered in the bake registry until the approval timeout"
    assert wait.payload["rollback"]["slot"] == "blue"
    assert out.record.token_timeouts == [300, 300, 3600, 300]
    assert out.output["approval"]["approvedBy"] == h.ABORTER


def test_approval_before_several_steps_pauses_before_each(sfn):
    out = sfn.run(approval_request(before=(10, 100)), FakeFunctions(approvals={1: "approve", 3: "approve"}))
    assert out.status == "SUCCEEDED", out.cause
    assert out.call_summary() == START + APPROVAL + step(10) + step(50) + APPROVAL + step(100) + PROMOTE


def test_reject_rolls_back_naming_who(sfn):
    req = approval_request()
    out = sfn.run(req, FakeFunctions(approvals={3: "reject"}))
    assert out.status == "FAILED"
    assert out.error == "RolledBackOnReject"
    assert out.cause.startswith(f"Rejected before {label(3)} (")
    assert "All traffic went back to the blue slot and the new task set ecs-svc/new was deleted." in out.cause
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + ROLLBACK
    assert_rolled_back(out, request=req)
    assert plain_states(out)[-6:] == ["Wait for approval", "Rejected by engineer"] + ROLLBACK_TAIL


def test_timeout_rolls_back_by_default(sfn):
    req = approval_request(timeoutSeconds=600)
    out = sfn.run(req, FakeFunctions())
    assert out.error == "RolledBackOnApprovalTimeout"
    assert out.cause.startswith(f"Not approved within 600 s before {label(3)}. All traffic went back to the blue slot")
    assert out.record.token_timeouts == [300, 300, 600]
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + ROLLBACK
    assert_rolled_back(out, request=req)
    assert plain_states(out)[-7:] == ["Wait for approval", "Approval timed out", "Not approved in time"] + ROLLBACK_TAIL


def test_timeout_with_on_timeout_approve_goes_on(sfn):
    out = sfn.run(approval_request(onTimeout="approve"), FakeFunctions())
    assert out.status == "SUCCEEDED", out.cause
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + step(100) + PROMOTE
    assert "Not approved in time" not in out.states_entered()
    assert out.output["approval"]["Error"] == "States.Timeout"


def test_alarm_event_during_the_wait_rolls_back_at_once(sfn):
    """alarm-rollback finds the wait like a bake and fails its token."""
    req = approval_request()
    out = sfn.run(req, FakeFunctions(approvals={3: "alarm"}))
    assert out.error == "RolledBackOnAlarm"
    assert out.cause.startswith(f"An alarm fired at {label(3)} (")
    # The token's cause names the wait (stock moto drops SendTaskFailure's
    # cause, "(null)"; the e2e test reads it).
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + ROLLBACK
    assert_rolled_back(out, request=req)
    assert plain_states(out)[-6:] == ["Wait for approval", "Alarm fired"] + ROLLBACK_TAIL


def test_alarm_already_firing_when_the_wait_starts(sfn):
    fake = FakeFunctions().fail(
        CHECK,
        h.FunctionError("AlarmFiring", f"alarm firing: {h.ALARM}"),
        when=lambda p: p.get("label", "").startswith("approval before"),
    )
    out = sfn.run(approval_request(before=(50,)), fake)
    assert out.error == "RolledBackOnAlarm"
    assert out.call_summary() == START + step(10) + APPROVAL + ROLLBACK


def test_abort_during_the_wait_ends_rolled_back_on_abort(sfn):
    out = sfn.run(approval_request(), FakeFunctions(approvals={3: "abort"}))
    assert out.error == "RolledBackOnAbort"
    assert out.call_summary() == START + step(10) + step(50) + APPROVAL + ROLLBACK
    assert plain_states(out)[-6:] == ["Wait for approval", "Aborted by engineer"] + ROLLBACK_TAIL


def test_promote_full_skips_the_remaining_pauses(sfn):
    out = sfn.run(approval_request(), FakeFunctions(promote_during_bake=(1, True)))
    assert out.status == "SUCCEEDED", out.cause
    assert out.call_summary() == START + step(10) + PROMOTE
    assert "Wait for approval" not in out.states_entered()


def test_the_history_names_who_approved(sfn):
    out = sfn.run(approval_request(before=(50,)), FakeFunctions(approvals={2: "approve"}))
    assert out.status == "SUCCEEDED"
    assert h.ABORTER in json.dumps(out.history, default=str)
    assert [c for c in out.call_summary() if c[0] == DELETE] == [(DELETE, "blue", h.OLD_TASK_SET["id"])]
    assert (SET_WEIGHT, "green", 50) in out.call_summary()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_pause_before_step_k_only(sfn, k):
    out = sfn.run(approval_request(before=(STEPS[k - 1],)), FakeFunctions(approvals={k: "approve"}))
    assert out.status == "SUCCEEDED", out.cause
    calls = START + [c for p in STEPS for c in (APPROVAL if p == STEPS[k - 1] else []) + step(p)] + PROMOTE
    assert out.call_summary() == calls
