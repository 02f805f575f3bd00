"""Issue 13 item 5, from the clients' side: weighted records with the
article's TTL of 300 s, real DNS answers through the world's caching
resolver (unbound) and real requests to the tasks that serve.

- During a deployment the authority answers the deployment TTL (5 s).
- After a rollback, new requests reach the old version within the bound
  create-taskset reported ("a rollback reaches new connections within N s of
  its decision").
- After a promotion no client request fails (no request reaches a deleted
  task): the old task set is deleted only after the exact drain, which
  counts the 300 s answers given before the first shift.
- After either, the records carry 300 again.

The world tweak (TTL 300) is made here through the Route 53 API."""

from __future__ import annotations

import json
import time
from pathlib import Path

from canarytest import world as W
from localaws.clients import Clients, ClientsConfig
from localaws.dns_server import query
from canarytest.e2e import assert_invariants, function_calls, service

ARTICLE_TTL = 300


def set_record_ttl(w: W.World, svc: W.Service, ttl: int) -> None:
    """Both weighted records get ``ttl`` (weights and targets unchanged)."""
    r53 = w.c("route53")
    rrs = [
        r
        for r in r53.list_resource_record_sets(HostedZoneId=svc.zone_id)["ResourceRecordSets"]
        if r["Type"] == "CNAME" and r["Name"].rstrip(".") == svc.record_name
    ]
    assert len(rrs) == 2, rrs
    changes = [{"Action": "UPSERT", "ResourceRecordSet": {**r, "TTL": ttl}} for r in rrs]
    r53.change_resource_record_sets(HostedZoneId=svc.zone_id, ChangeBatch={"Changes": changes})


def record_ttls(w: W.World, svc: W.Service) -> dict[str, int]:
    r53 = w.c("route53")
    return {
        r["SetIdentifier"]: r["TTL"]
        for r in r53.list_resource_record_sets(HostedZoneId=svc.zone_id)["ResourceRecordSets"]
        if r["Type"] == "CNAME" and r["Name"].rstrip(".") == svc.record_name
    }


def cname_ttl(aws, name: str) -> int:
    """The CNAME's TTL as the authority answers it now (no cache)."""
    r = query(name, aws.dns_authority())
    ttls = [rrset.ttl for rrset in r.answer if rrset.rdtype == 5]  # CNAME
    assert ttls, r
    return ttls[0]


def task_output(events: list[dict], state: str) -> list[dict]:
    """The function answers (Payload) of every TaskSucceeded of ``state``."""
    out, current = [], None
    for e in events:
        det = e.get("stateEnteredEventDetails")
        if det:
            current = det["name"]
        s = e.get("taskSucceededEventDetails")
        if s and current == state:
            out.append(json.loads(s["output"])["Payload"])
    return out


def clients(aws, svc: W.Service, log: Path, duration: float) -> Clients:
    cfg = ClientsConfig(
        name=svc.record_name, resolver=aws.resolver(), port=aws.task_port(), clients=4,
        mode="new-connection", rate=5, duration=duration, timeout=2.0,
    )
    return Clients(cfg, log=str(log), seed=13).start()


def read_log(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_rollback_reaches_clients_within_the_reported_bound(aws, world, tmp_path):
    svc = service(world)
    set_record_ttl(world, svc, ARTICLE_TTL)
    alarm = svc.alarms[0]
    name = f"{svc.name}-v2"
    # A long bake: the alarm, not the timeout, ends step 1.
    arn = W.start(world, svc.request(f"{W.IMAGE_REPO}:v2", steps=(50, 100), bake=60), name)
    W.wait_baking(world, arn, 1)
    # Nobody resolved the name before the first shift (the resolver's cache
    # is empty after the reset): every answer clients get is the short one.
    assert cname_ttl(aws, svc.record_name) == 5, "the deployment TTL is in force during the step"
    log = tmp_path / "clients.jsonl"
    c = clients(aws, svc, log, duration=90)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if c.snapshot()["versions"].get("v2", {}).get("requests", 0) >= 5:
                break
            time.sleep(0.2)
        assert c.snapshot()["versions"].get("v2", {}).get("requests", 0) >= 5, c.snapshot()
        aws.set_alarm_state(alarm, "ALARM", "errors from v2 (issue 13 e2e)")
        d = W.wait_end(world, arn, timeout=120)
        time.sleep(3)
    finally:
        c.stop()
    events = W.history(world, arn)
    assert d["status"] == "FAILED" and d["error"] == "RolledBackOnAlarm", d.get("cause")

    [plan] = task_output(events, "Create task set in idle slot")
    bound = plan["rollbackBound"]
    assert bound["seconds"] == 65 and bound["ttlSeconds"] == 5, bound
    assert bound["statement"].startswith("a rollback reaches new connections within 65 s of its decision")
    # No connection age given: keep-alive clients are bounded by the drain
    # that deletes the canary (propagation 60 s + TTL 5 + Cloud Map TTL + 10 s).
    assert bound["keepAlive"]["term"] == "drain", bound

    # The decision: the first write that moved all traffic back.
    changes = assert_invariants(aws, svc)
    back = [ch for ch in changes if ch["caller"] == "function"
            and {x["setIdentifier"]: x["weight"] for x in ch["changes"] if x.get("weight") is not None}.get("blue") == 100]
    assert back, changes
    decided = back[0]["time"]
    # The rollback batch brought the original TTL back with the weights.
    assert {x["ttl"] for x in back[0]["changes"] if x.get("ttl") is not None and x.get("action") != "DELETE"} == {ARTICLE_TTL}, back[0]
    assert record_ttls(world, svc) == {"blue": ARTICLE_TTL, "green": ARTICLE_TTL}

    recs = read_log(log)
    v2_after = [r["t"] for r in recs if r.get("version") == "v2" and r["t"] >= decided]
    last_v2 = max(v2_after, default=decided)
    measured = last_v2 - decided
    print(f"\nrollback decision -> last new request on v2: {measured:.1f} s (reported bound {bound['seconds']} s)")
    assert measured <= bound["seconds"], (measured, bound)
    # New requests after the bound all reach the old version.
    late = [r for r in recs if r["t"] > decided + bound["seconds"]]
    assert all(r.get("version") == "v1" for r in late), late[:5]
    # The new task set was deleted only after its exact drain: no request failed.
    errors = [r for r in recs if r.get("error")]
    assert errors == [], errors[:5]
    [rolled] = task_output(events, "Roll back traffic")
    assert rolled["drain"]["seconds"] >= 5 + 10, rolled["drain"]
    deletes = function_calls(aws, "DeleteTaskSet", "ecs")
    assert deletes and all(x["time"] >= decided + 5 + 10 for x in deletes), deletes


def test_promotion_never_sends_a_request_to_a_deleted_task(aws, world, tmp_path):
    svc = service(world)
    set_record_ttl(world, svc, ARTICLE_TTL)
    old = W.primary(world, svc)
    log = tmp_path / "clients.jsonl"
    # Clients resolve before the deployment: the resolver holds blue under
    # TTL 300, the answers the exact drain must wait out.
    c = clients(aws, svc, log, duration=600)
    try:
        time.sleep(2)
        name = f"{svc.name}-v2"
        arn = W.start(world, svc.request(f"{W.IMAGE_REPO}:v2", steps=(50, 100), bake=2), name)
        W.wait_baking(world, arn, 1)
        assert cname_ttl(aws, svc.record_name) == 5, "the deployment TTL is in force during the step"
        d = W.wait_end(world, arn, timeout=600)
        time.sleep(5)
    finally:
        c.stop()
    events = W.history(world, arn)
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    assert record_ttls(world, svc) == {"blue": ARTICLE_TTL, "green": ARTICLE_TTL}
    assert cname_ttl(aws, svc.record_name) == ARTICLE_TTL

    changes = assert_invariants(aws, svc)
    fn_changes = [ch for ch in changes if ch["caller"] == "function" and any(x.get("weight") is not None for x in ch["changes"])]
    # The TTLs written (a conditional step DELETEs the records as read, TTL 300).
    ttls = [sorted({x["ttl"] for x in ch["changes"] if x.get("ttl") is not None and x.get("action") != "DELETE"})
            for ch in fn_changes]
    # Steps carry the deployment TTL; the promotion's batch brings 300 back.
    assert ttls[0] == [5] and ttls[-1] == [ARTICLE_TTL], ttls
    first_shift = fn_changes[0]
    [promoted] = task_output(events, "Promote new task set")
    drain = promoted["drain"]
    print(f"\nold slot's exact drain: {drain['explain']}")
    until = W_parse(drain["until"])
    # Answers given under 300 s before the first shift was visible are held until then.
    assert until >= first_shift.get("visibleAt", first_shift["time"]) + ARTICLE_TTL + 10 + 10 - 1, (drain, first_shift)
    deletes = function_calls(aws, "DeleteTaskSet", "ecs")
    assert len(deletes) == 1 and deletes[0]["time"] >= until - 1, (deletes, drain)

    recs = read_log(log)
    assert len(recs) > 100, len(recs)
    errors = [r for r in recs if r.get("error") or r.get("status") != 200]
    assert errors == [], errors[:5]
    # Requests reached the old version only while it existed.
    old_tasks = {r["task"] for r in recs if r.get("version") == "v1"}
    assert old_tasks, "clients reached the old version before the promotion"
    assert all(r["tEnd"] <= deletes[0]["time"] + 1 for r in recs if r.get("version") == "v1")
    assert W.task_sets(world, svc)[0]["id"] != old["id"]


def W_parse(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
