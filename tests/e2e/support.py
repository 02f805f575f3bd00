"""Helpers the end-to-end tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import world as W
from localaws import LocalAws

# Where `cargo build` put the CLI: CARGO_TARGET_DIR when set (a shared target dir), else target/.
CLI = W.REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "ecs-dns-canary"


def service(w: W.World, index: int = 0) -> W.Service:
    return list(w.services.values())[index]


# ------------------------------------------------------------------ helpers


def assert_invariants(aws: LocalAws, svc: W.Service | None = None) -> list[dict]:
    """Traffic invariants over the Route 53 change log since the last reset:
    never all-zero, never weight on a slot with 0 healthy instances at that
    moment. Returns the log."""
    changes = aws.route53_changes()
    # The harness's own writes (the seed's blue 100 / green 0, made while the
    # blue tasks are still starting: task start time is on) are the world's
    # setup, not a deployment's: every other writer is checked.
    checked = [c for c in changes if c.get("caller") != "harness"]
    bad = W.route53_violations(checked, svc.record_name if svc else None)
    assert not bad, "traffic invariant broken:\n" + "\n".join(bad)
    return changes


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
