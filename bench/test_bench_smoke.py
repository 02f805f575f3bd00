"""Checks that the benchmark machinery runs (one repetition of everything).
No timing is asserted: only that each section produces its figures.

Run: .venv/bin/python -m pytest -q bench/test_bench_smoke.py (about 4.5 min:
1.5 for the control-plane sections, 1.5 for the clients section, 1.2 for
the fleet section)
Without release binaries (target/release/<function>) the size and init
sections are skipped and the local-AWS sections use cargo lambda watch."""

from __future__ import annotations

import json
from pathlib import Path

import bench  # noqa: E402
import init_time  # noqa: E402
from common import baseline_python  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402


def test_runtime_api_runs_the_python_baseline_loop() -> None:
    """The Runtime API sees the first poll, hands one event over, gets the
    handler's named error back and the next poll."""
    cand = next(c for c in init_time._candidates(baseline_python()) if c["kind"] == "python")
    with RuntimeApi() as api:
        r = init_time.one_run(api, cand, invoke={"benchmark": "not a valid request"})
    assert r["initMs"] > 0
    assert r["answer"] == {"kind": "error", "errorType": "InvalidInput"}, r


def test_bench_quick(tmp_path: Path) -> None:
    have_release = bench.release_binaries_present()
    out = tmp_path / "bench.json"
    args = ["--quick", "--no-build", "--out", str(out), "--lambda-services", "release" if have_release else "cargo",
            "--sections", "size,init,orchestration,rollback,cost"]  # the clients section has its own smoke below
    code = bench.main(args)
    doc = json.loads(out.read_text())
    assert doc["errors"] == {}, doc["errors"]
    assert code == 0
    local = doc["local-release" if have_release else "local-cargo"]
    assert local["orchestration"]["serverWallS"]["n"] == 1
    assert local["rollback"]["eventToWeightsBackMs"]["n"] == 1
    runs = local["cost"]["runs"]
    assert [r["bakeSeconds"] for r in runs] == [1, 5]
    assert all(r["status"] == "SUCCEEDED" and r["stateTransitions"] > 0 for r in runs)
    if have_release:
        assert len(doc["size"]["rows"]) == 5
        rust = [r for r in doc["init"]["rows"] if r["kind"] == "rust"]
        assert len(rust) == 5 and all(r["initMs"]["n"] == 1 for r in rust)
        assert all(r["sanityAnswer"]["kind"] in ("error", "response") for r in doc["init"]["rows"])
    else:
        assert "size" in doc["skipped"] and "init" in doc["skipped"]
    assert "| figure |" in doc["table"]


def test_bench_clients_smoke(tmp_path: Path) -> None:
    """The clients section (bench/clients.py) on its smallest profile: one
    local AWS (cargo lambda watch, debug builds), a successful canary at
    50 % seen through 4 unbound caches, a rollback with TTL 1 s in both
    client modes, one blast-radius run; every figure comes out of the
    clients' log. Asserts what must hold whatever the machine's load:
    the canary's own version was seen, both modes reached safety after the
    alarm, the blast radius counted the canary's 5xx, and no request of a
    successful canary failed (the issue's goal: a deployment costs clients
    nothing)."""
    out = tmp_path / "bench.json"
    code = bench.main(["--sections", "clients", "--clients-profile", "smoke", "--no-build", "--out", str(out)])
    doc = json.loads(out.read_text())
    c = doc["clients"]
    assert c["errors"] == [], c["errors"]
    assert code == 0
    f = c["figures"]
    share = {s["weight"]: s for s in f["share"]}
    assert set(share) == {50, 100}, share
    assert share[100]["sharePct"]["median"] == 100.0
    assert 0 < share[50]["sharePct"]["median"] < 100 and share[50]["drawsPerRun"]["median"] > 0
    # one cache = one draw per TTL: every (cache, second) answered one version
    assert share[50]["pure"]["median"] >= 0.9
    (tts,) = f["tts"]
    assert tts["ttl"] == 1 and tts["propagation"] is False
    for mode in ("new-connection", "keep-alive"):
        assert tts[mode]["n"] == 1 and tts[mode]["neverSafe"] == 0, tts
    run = next(r for r in c["runs"] if r["scenario"] == "tts1")
    # the canary served new-connection clients before its alarm, and they left it after
    assert run["tts"]["new-connection"]["shareOnNewBeforeAlarm"] > 0, run["tts"]
    assert run["weightsBackS"] >= 0 and run["bound"]["documentedS"] == 61
    (blast,) = f["blast"]
    assert blast["bad"]["median"] > 0 and blast["served"]["median"] >= blast["bad"]["median"]
    # what a deployment cost clients, counted for both kinds of deployment
    kinds = {k["deployment"]: k for k in f["cost"]}
    assert set(kinds) == {"successful canary", "rollback (bad canary), no propagation"}, kinds
    assert all(k["failed"]["n"] == k["n"] for k in kinds.values())
    assert "| time to safety, s" in doc["table"] and "| blast radius" in doc["table"]


def test_bench_fleet_smoke(tmp_path: Path) -> None:
    """The fleet section (bench/fleet.py) with N = 3 (two parked bakes and
    one real deployment per way), API limits on: the alarm path through the
    bake registry makes one Query and reads no history; the history scan
    (the fallback, forced by failing the Query) lists the executions and
    reads each one's history; both put the watcher's weights back; the
    parked bakes' gate checks all passed. No timing is asserted."""
    out = tmp_path / "bench.json"
    code = bench.main(["--sections", "fleet", "--fleet-profile", "smoke", "--no-build", "--out", str(out)])
    doc = json.loads(out.read_text())
    f = doc["fleet"]
    assert f["errors"] == [], f["errors"]
    assert code == 0
    runs = {r["way"]: r for r in f["runs"]}
    reg, scan = runs["registry"], runs["historyScan"]
    assert reg["lookup"] == "registry" and scan["lookup"] == "historyScan"
    assert reg["actions"] == ["rolledBack"], reg
    assert reg["alarmPathByOperation"]["dynamodb:Query"] == 1
    assert "stepfunctions:GetExecutionHistory" not in reg["alarmPathByOperation"]
    assert "stepfunctions:ListExecutions" not in reg["alarmPathByOperation"]
    assert scan["alarmPathByOperation"]["stepfunctions:GetExecutionHistory"] == scan["runningExecutions"]
    assert "rolledBack" in scan["actions"]
    assert reg["eventToWeightsBackMs"] > 0 and scan["eventToWeightsBackMs"] > 0
    gate = f["gate"][0]
    assert gate["bakes"] == 2 and gate["failedBakes"] == 0 and gate["notParked"] == 0
    assert gate["dynamodbPutItem"] == 2  # each parked bake registered under its one alarm
    assert "| fleet: alarm path AWS calls |" in doc["table"]
