"""Checks that the benchmark machinery runs (one repetition of everything).
No timing is asserted: only that each section produces its figures.

Run: .venv/bin/python -m pytest -q bench/test_bench_smoke.py
Without release binaries (target/release/<function>) the size and init
sections are skipped and the local-AWS sections use cargo lambda watch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    args = ["--quick", "--no-build", "--out", str(out), "--lambda-services", "release" if have_release else "cargo"]
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
