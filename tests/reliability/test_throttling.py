"""Issue 5, part 5: 20 deployments of 20 services at once against a Route 53
that allows 5 requests per second across all its APIs (the account limit).

All must complete successfully; every Route 53 change must be safe. The
figures (wall time, Throttling answers, function retries) are printed and
written to .local/reliability/throttling.json.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rig

DEPLOYMENTS = int(os.environ.get("RELIABILITY_FLEET", "20"))
OUT = Path(__file__).resolve().parents[2] / ".local" / "reliability" / "throttling.json"


@pytest.mark.slow
def test_twenty_deployments_under_the_route53_rate_limit(lanes):
    lane = rig.Lane("throttle", concurrency=DEPLOYMENTS)
    lanes.lanes.append(lane)  # stopped with the others at session end
    lane.start().warm(copies=4)
    pairs = lane.services(DEPLOYMENTS, prefix="fleet")
    aws = lane.aws
    seq0 = lane.last_call_seq()
    change0 = len(aws.route53_changes())
    aws.route53_rate_limit(enabled=True, rate=5, caller="any")
    t0 = time.time()
    try:
        reqs = [(w, svc, svc.request(rig.IMAGE, steps=(10, 50, 100), bake=1, ready_poll=1, drain=0, ready_timeout=300))
                for w, svc in pairs]
        with ThreadPoolExecutor(DEPLOYMENTS) as pool:
            arns = list(pool.map(lambda r: rig.start(lane, r[2], rig.execution_name(f"fleet-{r[1].name}")), reqs))
        descs = [rig.wait(lane, arn, timeout=1800, poll=1.0) for arn in arns]
        wall = time.time() - t0
        limit = aws._control("GET", "route53-rate-limit")
    finally:
        aws.route53_rate_limit(enabled=False)

    calls = aws.calls(service="route53", since=seq0)
    throttled = [c for c in calls if (c.get("fault") or {}).get("reason") == "route53-rate-limit"]
    by_caller = Counter(c["caller"] for c in throttled)
    retries: Counter[str] = Counter()
    worst = (0, "")  # most failed attempts of one state visit (Retry: 1 attempt + MaxAttempts 6 retries)
    for arn in arns:
        state, failed = "", 0
        for e in rig.history(lane, arn):
            if e.get("stateEnteredEventDetails"):
                state, failed = e["stateEnteredEventDetails"]["name"], 0
            d = e.get("taskFailedEventDetails")
            if d:
                retries[d.get("error")] += 1
                failed += 1
                worst = max(worst, (failed, state))
    results = []
    for (w, svc, _), desc in zip(reqs, descs):
        v, obs = rig.check_invariants(lane, w, svc, desc, since_change=change0)
        results.append({"service": svc.name, "status": desc["status"], "error": desc.get("error"),
                        "seconds": round((desc["stopDate"] - desc["startDate"]).total_seconds(), 1), "violations": v})
    figures = {
        "deployments": DEPLOYMENTS,
        "succeeded": sum(r["status"] == "SUCCEEDED" for r in results),
        "wallSeconds": round(wall, 1),
        "route53Calls": len(calls),
        "throttlingAnswers": len(throttled),
        "throttlingAnswersByCaller": dict(by_caller),
        "rateLimit": limit,
        "functionFailuresRetried": dict(retries),
        "mostFailedAttemptsOfOneState": {"attempts": worst[0], "state": worst[1], "attemptsAllowed": 7},
        "slowestDeploymentSeconds": max(r["seconds"] for r in results),
        "results": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    print(
        f"\n{figures['succeeded']}/{DEPLOYMENTS} succeeded in {wall:.0f} s; {len(calls)} Route 53 calls, "
        f"{len(throttled)} Throttling answers {dict(by_caller)}; function failures retried by the state machine: {dict(retries)}, "
        f"at most {worst[0]} failed attempts of one state ({worst[1]}) of the 7 its Retry allows"
    )
    bad = [r for r in results if r["status"] != "SUCCEEDED" or r["violations"]]
    assert not bad, bad
    assert throttled, "the rate limit never throttled: the test did not test anything"


CW_OUT = OUT.parent / "cloudwatch-throttling.json"


# In `make test` (about 80 s here, under the 2-minute line for the fast suite).
def test_twenty_deployments_under_the_cloudwatch_rate_limits(lanes):
    """Issue 12, defect 13: DescribeAlarms 9/s and DescribeAlarmHistory 20/s
    per account and Region (CloudWatch service quotas, not adjustable). 20
    deployments with gates at once: all succeed, none rolls back because of
    throttling, and every Route 53 change is safe. The realistic timings of
    the lanes (task start, read lag, propagation) stay on."""
    lane = rig.Lane("cwthrottle", concurrency=DEPLOYMENTS)
    lanes.lanes.append(lane)
    lane.start().warm(copies=4)
    pairs = lane.services(DEPLOYMENTS, prefix="cwfleet")
    aws = lane.aws
    seq0 = lane.last_call_seq()
    change0 = len(aws.route53_changes())
    aws.cloudwatch_rate_limit(enabled=True, describe_alarms=9, describe_alarm_history=20, caller="any")
    t0 = time.time()
    try:
        reqs = [(w, svc, svc.request(rig.IMAGE, steps=(10, 50, 100), bake=1, ready_poll=1, drain=0, ready_timeout=300))
                for w, svc in pairs]
        with ThreadPoolExecutor(DEPLOYMENTS) as pool:
            arns = list(pool.map(lambda r: rig.start(lane, r[2], rig.execution_name(f"cw-{r[1].name}")), reqs))
        descs = [rig.wait(lane, arn, timeout=1800, poll=1.0) for arn in arns]
        wall = time.time() - t0
        limit = aws._control("GET", "cloudwatch-rate-limit")
    finally:
        aws.cloudwatch_rate_limit(enabled=False)
    calls = aws.calls(service="cloudwatch", since=seq0)
    throttled = [c for c in calls if (c.get("fault") or {}).get("reason") == "cloudwatch-rate-limit"]
    by_op = Counter(c["operation"] for c in calls)
    retries: Counter[str] = Counter()
    for arn in arns:
        for e in rig.history(lane, arn):
            d = e.get("taskFailedEventDetails")
            if d:
                retries[d.get("error")] += 1
    results = []
    for (w, svc, _), desc in zip(reqs, descs):
        v, obs = rig.check_invariants(lane, w, svc, desc, since_change=change0)
        results.append({"service": svc.name, "status": desc["status"], "error": desc.get("error"),
                        "cause": (desc.get("cause") or "")[:300],
                        "seconds": round((desc["stopDate"] - desc["startDate"]).total_seconds(), 1), "violations": v})
    figures = {
        "deployments": DEPLOYMENTS,
        "succeeded": sum(r["status"] == "SUCCEEDED" for r in results),
        "wallSeconds": round(wall, 1),
        "cloudwatchCalls": dict(by_op),
        "throttlingAnswers": len(throttled),
        "throttlingAnswersByOperation": dict(Counter(c["operation"] for c in throttled)),
        "rateLimit": limit,
        "functionFailuresRetried": dict(retries),
        "slowestDeploymentSeconds": max(r["seconds"] for r in results),
        "results": results,
    }
    CW_OUT.parent.mkdir(parents=True, exist_ok=True)
    CW_OUT.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    print(
        f"\n{figures['succeeded']}/{DEPLOYMENTS} succeeded in {wall:.0f} s; CloudWatch calls {dict(by_op)}, "
        f"{len(throttled)} Throttling answers {figures['throttlingAnswersByOperation']}; "
        f"function failures retried by the state machine: {dict(retries)}"
    )
    bad = [r for r in results if r["status"] != "SUCCEEDED" or r["violations"]]
    assert not bad, bad
