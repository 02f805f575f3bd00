"""Helpers the end-to-end tests share (their fixtures are in
tests/e2e/conftest.py): the CLI binary, running a deployment to its end,
the functions' AWS calls, what a failed test prints."""

from __future__ import annotations

import json
import os
from pathlib import Path

from localaws import LocalAws

from . import world as W
from .invariants import assert_invariants

__all__ = ["CLI", "assert_invariants", "cli_env", "diagnostics", "function_calls", "run", "service"]

# Where `cargo build` put the CLI: CARGO_TARGET_DIR when set (a shared target dir), else target/.
CLI = W.REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "ecs-dns-canary"


def service(w: W.World, index: int = 0) -> W.Service:
    return list(w.services.values())[index]


# ------------------------------------------------------------------ helpers


def run(w: W.World, request: dict | str, name: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
    """Starts a deployment named ``name``, waits (bounded) for its end;
    returns (DescribeExecution, history)."""
    arn = W.start(w, request, name)
    d = W.wait_end(w, arn, timeout=timeout)
    return d, W.history(w, arn)


def function_calls(aws: LocalAws, operation: str, service: str | None = None) -> list[dict]:
    """Successful AWS calls the functions made (``caller == function``)."""
    return [c for c in aws.calls(service=service, operation=operation, caller="function") if c["status"] < 300]


def diagnostics(aws: LocalAws, w: W.World) -> str:
    """What a failed test shows: each execution's story, error and cause,
    the Route 53 changes, alarm deliveries and the tail of the logs."""
    out = ["--- e2e diagnostics ---"]
    try:
        sfn = w.c("stepfunctions")
        for ex in sfn.list_executions(stateMachineArn=w.state_machine_arn)["executions"]:
            d = sfn.describe_execution(executionArn=ex["executionArn"])
            events = W.history(w, ex["executionArn"])
            out.append(f"{ex['name']}: {d['status']} {d.get('error')} {d.get('cause')}")
            out.append("  " + " > ".join(W.entered(events)))
        for c in aws.route53_changes():
            out.append(f"route53 #{c['seq']} {c['timeIso']} {c['caller']}: "
                       f"{[(x.get('name'), x.get('type'), x.get('setIdentifier'), x.get('weight')) for x in c['changes']]}")
        out.append(f"alarm events: {json.dumps(aws.alarm_events().get('deliveries'), default=str)[:3000]}")
    except Exception as e:  # noqa: BLE001 - diagnostics must not hide the failure
        out.append(f"(diagnostics failed: {e})")
    for log in ("localaws.log", "cargo-lambda.log"):
        path = Path(aws.run_dir) / log
        try:
            lines = path.read_text(errors="replace").splitlines()[-60:]
            out.append(f"--- tail of {path}")
            out += lines
        except OSError:
            pass
    return "\n".join(out)


def cli_env(aws: LocalAws) -> dict[str, str]:
    env = dict(os.environ)
    env.update(aws.env())
    env["CANARY_STATE_MACHINE_ARN"] = W.STATE_MACHINE_NAME
    env.pop("CANARY_JSON", None)
    return env
