"""Init time: from process start until the function polls the Runtime API
for its first event (its SDK clients are built by then), for each release
binary and for the Python + boto3 baseline, in the same run, interleaved
(one round = every function once, in order), after one unrecorded warm-up
round (page cache) that also invokes each function once with an invalid
event to check the runtime loop answers."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from common import BENCH, FUNCTIONS, RELEASE_DIR, baseline_python, lambda_env, summary
from runtime_api import RuntimeApi

PYTHON_NAME = "python-boto3 set-weight"
PYTHON_HANDLER = "set_weight.handler"


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _candidates(python: Path) -> list[dict[str, Any]]:
    out = []
    for name in FUNCTIONS:
        out.append(
            {
                "name": name,
                "kind": "rust",
                "cmd": [str(RELEASE_DIR / name)],
                "handler": "bootstrap",
                "executionEnv": "AWS_Lambda_provided.al2023",
            }
        )
    out.append(
        {
            "name": PYTHON_NAME,
            "kind": "python",
            "cmd": [str(python), str(BENCH / "python_baseline" / "bootstrap.py"), PYTHON_HANDLER],
            "handler": PYTHON_HANDLER,
            "executionEnv": "AWS_Lambda_python3",
        }
    )
    return out


def one_run(api: RuntimeApi, cand: dict[str, Any], invoke: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Starts the process, waits for its first poll (and, with `invoke`, for
    its answer to that event and its next poll), ends it."""
    fn_name = cand["name"] if cand["kind"] == "rust" else "set-weight-python"
    api.prepare(fn_name, invoke)
    env = lambda_env(fn_name, api.address, cand["handler"], cand["executionEnv"])
    started = time.perf_counter()
    proc = subprocess.Popen(cand["cmd"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result: dict[str, Any] = {"pid": proc.pid}
    try:
        try:
            first = api.polls.get(timeout=timeout)
        except queue.Empty as e:
            proc.poll()
            raise RuntimeError(f"{cand['name']}: no poll within {timeout:.0f} s (exit code {proc.returncode})") from e
        result["initMs"] = (first - started) * 1000
        result["rssMB"] = _rss_mb(proc.pid)
        if invoke is not None:
            answer = api.answers.get(timeout=timeout)
            api.polls.get(timeout=timeout)  # back for the next event: the loop works
            payload = answer["payload"]
            body_type = payload.get("errorType") if isinstance(payload, dict) else None
            result["answer"] = {"kind": answer["kind"], "errorType": body_type or answer["errorType"]}
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
        api.release_held()
        result["stderrTail"] = err.decode(errors="replace")[-300:] if err else ""
    return result


def run(reps: int = 20, python: Path | None = None, include_python: bool = True) -> dict[str, Any]:
    python = python or baseline_python()
    cands = _candidates(python)
    if not include_python:
        cands = [c for c in cands if c["kind"] == "rust"]
    missing = [c["cmd"][0] for c in cands if not os.path.exists(c["cmd"][0])]
    if missing:
        raise FileNotFoundError(f"missing: {', '.join(missing)} (build the release binaries first)")
    samples: dict[str, list[float]] = {c["name"]: [] for c in cands}
    rss: dict[str, list[float]] = {c["name"]: [] for c in cands}
    sanity: dict[str, Any] = {}
    with RuntimeApi() as api:
        # Warm-up round: page cache, and one invalid event each to check the loop.
        for c in cands:
            r = one_run(api, c, invoke={"benchmark": "not a valid request"})
            sanity[c["name"]] = r.get("answer")
        for _ in range(reps):
            for c in cands:
                r = one_run(api, c)
                samples[c["name"]].append(r["initMs"])
                if r.get("rssMB") is not None:
                    rss[c["name"]].append(r["rssMB"])
    rows = []
    for c in cands:
        rows.append(
            {
                "function": c["name"],
                "kind": c["kind"],
                "initMs": summary(samples[c["name"]], 2),
                "rssMBAtReady": summary(rss[c["name"]], 1),
                "samplesMs": [round(v, 3) for v in samples[c["name"]]],
                "sanityAnswer": sanity.get(c["name"]),
            }
        )
    out: dict[str, Any] = {"reps": reps, "python": str(python), "rows": rows}
    py = next((r for r in rows if r["kind"] == "python"), None)
    if py and py["initMs"]["median"]:
        rust_rows = [r for r in rows if r["kind"] == "rust"]
        sw = next((r for r in rust_rows if r["function"] == "set-weight"), None)
        slowest = max(rust_rows, key=lambda r: r["initMs"]["median"])
        out["pythonVsSetWeight"] = round(py["initMs"]["median"] / sw["initMs"]["median"], 1) if sw else None
        out["pythonVsSlowestRust"] = round(py["initMs"]["median"] / slowest["initMs"]["median"], 1)
        out["slowestRust"] = slowest["function"]
        out["target"] = ">= 20x"
        out["targetMet"] = out["pythonVsSlowestRust"] >= 20
    return out
