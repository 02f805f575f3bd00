"""Shared bits of the benchmark: paths, the function names, statistics, the
environment Lambda gives a function, the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FUNCTIONS = ["create-taskset", "set-weight", "check-health", "delete-taskset", "alarm-rollback"]
RELEASE_DIR = REPO / "target" / "release"
RESULTS_DIR = REPO / "bench-results"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# boto3 alone (bench/setup.sh): the Python baseline's interpreter.
BASELINE_PYTHON = BENCH / ".venv" / "bin" / "python"


def baseline_python() -> Path:
    """bench/.venv when bench/setup.sh made it, else the harness's .venv."""
    return BASELINE_PYTHON if BASELINE_PYTHON.exists() else VENV_PYTHON
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:ecs-dns-canary"
BAKE_TABLE = "ecs-dns-canary-bakes"


def summary(values: list[float], digits: int = 3) -> dict[str, Any]:
    """Median, min, max (and n) of a list of figures."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def lambda_env(function_name: str, runtime_api: str, handler: str, execution_env: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Lambda gives a function's process (reserved variables
    of the managed runtimes), with dummy credentials. HOME points at an empty
    directory so neither SDK reads a developer's ~/.aws."""
    home = RESULTS_DIR / "empty-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(BENCH),
        "LAMBDA_RUNTIME_DIR": str(BENCH),
        "AWS_EXECUTION_ENV": execution_env,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]0123456789abcdef",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
        "AWS_SESSION_TOKEN": "benchmark-session-token",
        "AWS_EC2_METADATA_DISABLED": "true",
        "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
        "BAKE_TABLE": BAKE_TABLE,
    }
    env.update(extra or {})
    return env


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, OS: printed with the table."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout.strip() or None
        except OSError:
            return None

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memoryGB": mem_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rustc": version(["rustc", "--version"]),
        "git": version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        # Uncommitted changes to what the binaries are built from, at the start.
        "gitDirty": (version(["git", "-C", str(REPO), "status", "--porcelain", "--", "shared", "functions", "Cargo.toml", "Cargo.lock", "statemachine"]) or "").splitlines(),
    }
