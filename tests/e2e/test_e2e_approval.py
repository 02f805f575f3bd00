"""Issue 15 item 3: manual approval (`strategy.approval`) on the real
functions and the local AWS.

- approve: the execution waits before 50 % (traffic at 10 %), `history`
  shows the wait and the exact approve command, `promote` refuses to answer
  it (exit 5), `approve` goes on to SUCCEEDED and the history names who;
- reject: rolls back at once, `RolledBackOnReject`, the cause naming the
  reason and the caller; old slot 100 %, new task set gone;
- an alarm event during the wait: alarm-rollback finds the wait in the bake
  registry by the alarm's name and rolls back at once (`RolledBackOnAlarm`);
- abort during the wait: `RolledBackOnAbort`; a 2-s approval timeout:
  `RolledBackOnApprovalTimeout`.

Bakes are 1 s, the world's TTLs 1 s and the drains skipped, so each test
takes seconds."""

from __future__ import annotations

import json
import subprocess
import time

from canarytest import world as W
from canarytest.e2e import CLI, assert_invariants, cli_env
from test_e2e_abort import BACK, assert_restored, cli, fast, svc_of  # noqa: F401 (fixtures)

APPROVAL = {"beforeSteps": [50], "timeoutSeconds": 120}
WAIT = "Wait for approval"


def start(w: W.World, svc: W.Service, name: str, approval: dict = APPROVAL) -> str:
    """[10, 50, 100] with 1-s bakes, pausing before 50 %. The drains are
    skipped (`unsafeShortDrain` with `drainSeconds` 0): the approval paths,
    not the drains, are under test."""
    req = svc.request(svc.image("v2"), steps=(10, 50, 100), bake=1, approval=approval, unsafeShortDrain=True)
    return W.start(w, req, name)


def wait_for_approval(w: W.World, arn: str, timeout: float = 60.0) -> None:
    """Until the execution waits in Wait for approval (its callback task submitted)."""
    deadline = time.monotonic() + timeout
    while True:
        events = W.history(w, arn)
        waiting = inside = False
        for e in events:
            det = e.get("stateEnteredEventDetails")
            if det is not None:
                waiting = False
                inside = det["name"] == WAIT
            elif e["type"] == "TaskSubmitted" and inside:
                waiting = True
            elif e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and inside:
                raise AssertionError(f"the approval wait ended before the test acted: {e}")
        if waiting:
            return
        if any(e["type"].startswith("Execution") and e["type"] != "ExecutionStarted" for e in events):
            raise AssertionError(f"{arn} ended before waiting for approval: {W.entered(events)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} not waiting for approval after {timeout:.0f} s: {W.entered(events)}")
        time.sleep(0.1)


def test_approve_goes_on_and_history_shows_the_command(aws, fast, cli):  # noqa: F811
    svc = svc_of(fast)
    name = f"{svc.name}-v2"
    arn = start(fast, svc, name)
    wait_for_approval(fast, arn)
    assert W.weights(fast, svc) == {"blue": 90, "green": 10}

    h = json.loads(cli("history", name, "--json").stdout)
    assert h["awaitingApproval"]["approveCommand"] == f"ecs-dns-canary approve {name}", h.get("awaitingApproval")
    text = cli("history", name).stdout
    assert f"approve with `ecs-dns-canary approve {name}`" in text, text
    # promote ends bakes only: the approval wait is left to approve/reject.
    p = cli("promote", name)
    assert p.returncode == 5, p.stdout + p.stderr
    assert "waits for approval" in p.stdout, p.stdout
    # `watch` (plain lines, as in a pipe) says it waits and prints the command.
    watch = subprocess.Popen([str(CLI), "watch", name, "--poll-ms", "200"], env=cli_env(aws),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = cli("approve", name, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert answer["action"] == "approved" and answer["state"] == WAIT, answer
    caller = answer["caller"]

    d = W.wait_end(fast, arn, timeout=90)
    assert d["status"] == "SUCCEEDED", d
    watched, _ = watch.communicate(timeout=30)
    assert watch.returncode == 0, watched
    assert "waiting for approval before step 2 of 3 (50%) (up to 120 s)" in watched, watched
    assert f"approve: ecs-dns-canary approve {name}" in watched, watched
    assert f"approved by {caller}" in watched, watched
    events = W.history(fast, arn)
    assert W.entered(events).count(WAIT) == 1
    assert caller in json.dumps(events, default=str), "the history names who approved"
    again = cli("approve", name)
    assert again.returncode == 5, again.stdout + again.stderr
    assert "has ended" in again.stdout
    assert W.weight_changes(assert_invariants(aws, svc), svc)[-1] == {"blue": 0, "green": 100}


def test_reject_rolls_back_at_once_naming_who(aws, fast, cli):  # noqa: F811
    svc = svc_of(fast)
    old = W.primary(fast, svc)
    name = f"{svc.name}-v2"
    arn = start(fast, svc, name)
    wait_for_approval(fast, arn)
    out = cli("reject", name, "--reason", "latency looks wrong", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert answer["action"] == "rejected", answer
    d = W.wait_end(fast, arn, timeout=60)
    assert d["status"] == "FAILED"
    assert d["error"] == "RolledBackOnReject", d.get("cause")
    assert d["cause"].startswith("Rejected before step 2 of 3 (50%) (rejected by "), d["cause"]
    assert answer["caller"] in d["cause"] and "latency looks wrong" in d["cause"], d["cause"]
    assert W.story(W.history(fast, arn))[-6:] == [
        WAIT, "Rejected by engineer", "Roll back traffic", "Drain new task set", "Delete new task set",
        "Deployment failed",
    ]
    assert W.weight_changes(assert_invariants(aws, svc), svc)[-1] == BACK
    assert_restored(fast, svc, old)


def test_an_alarm_event_during_the_wait_rolls_back_at_once(aws, fast):  # noqa: F811
    svc = svc_of(fast)
    name = f"{svc.name}-v2"
    arn = start(fast, svc, name)
    wait_for_approval(fast, arn)
    t0 = time.monotonic()
    aws.set_alarm_state(svc.alarms[0], "ALARM", "5xx above threshold")
    d = W.wait_end(fast, arn, timeout=60)
    assert d["error"] == "RolledBackOnAlarm", d.get("cause")
    assert "during approval before step 2 of 3 (50%)" in d["cause"], d["cause"]
    assert time.monotonic() - t0 < 60
    assert W.story(W.history(fast, arn))[-6:-4] == [WAIT, "Alarm fired"]
    assert W.weight_changes(assert_invariants(aws, svc), svc)[-1] == BACK


def test_abort_during_the_wait_ends_rolled_back_on_abort(aws, fast, cli):  # noqa: F811
    svc = svc_of(fast)
    old = W.primary(fast, svc)
    name = f"{svc.name}-v2"
    arn = start(fast, svc, name)
    wait_for_approval(fast, arn)
    out = cli("abort", name, "--reason", "wrong build", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["action"] == "tokenFailed", out.stdout
    d = W.wait_end(fast, arn, timeout=60)
    assert d["error"] == "RolledBackOnAbort", d.get("cause")
    assert "wrong build" in d["cause"], d["cause"]
    assert W.story(W.history(fast, arn))[-6:-4] == [WAIT, "Aborted by engineer"]
    assert_restored(fast, svc, old)


def test_no_answer_in_time_rolls_back(aws, fast):  # noqa: F811
    svc = svc_of(fast)
    old = W.primary(fast, svc)
    arn = start(fast, svc, f"{svc.name}-v2", approval={"beforeSteps": [50], "timeoutSeconds": 2})
    d = W.wait_end(fast, arn, timeout=60)
    assert d["error"] == "RolledBackOnApprovalTimeout", d.get("cause")
    assert d["cause"].startswith("Not approved within 2 s before step 2 of 3 (50%)."), d["cause"]
    assert W.story(W.history(fast, arn))[-6:-4] == [WAIT, "Not approved in time"]
    assert W.weight_changes(assert_invariants(aws, svc), svc)[-1] == BACK
    assert_restored(fast, svc, old)
