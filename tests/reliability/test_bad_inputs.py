"""Issue 5, part 3: malformed and dangerous deployment inputs.

Each input is started as a real execution of the state machine. It must end
`CreateFailed` with create-taskset refusing it under the named error
(`InvalidInput`, `TargetNotFound`, `TargetMisconfigured`, ...), create-taskset
must have run once (these are not retried), and the whole local AWS state
(task sets, task definitions, records, Cloud Map instances and health,
alarms) must be identical before and after. Every input targets a service
of its own, so a wrongly accepted one cannot disturb the others. The
catalogue itself is `canarytest.bad_inputs` (the plan e2e test uses it too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rig
from canarytest.bad_inputs import CATALOGUE, Ctx

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def bad_world(lane: rig.Lane):
    pairs = lane.services(len(CATALOGUE) + 1, prefix="bad")
    ttl600 = lane.service(prefix="ttl", ttl=600)[1]
    w0 = pairs[0][0]
    plain = "plainsvc"
    w0.c("ecs").create_service(
        cluster=w0.cluster,
        serviceName=plain,
        taskDefinition=pairs[0][1].name,
        desiredCount=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [w0.subnet_id], "securityGroups": [w0.sg_id]}},
    )
    seen: dict[str, tuple[str, str]] = {}
    yield {"pairs": pairs, "extra": {"ttl600": ttl600, "plain_service": plain}, "seen": seen}
    if len(seen) == len(CATALOGUE):
        _write_table(seen)


def _write_table(seen: dict[str, tuple[str, str]]) -> None:
    refused = sum(1 for b in CATALOGUE if seen[b.id][1] == "ok")
    lines = [
        "# Malformed and dangerous inputs",
        "",
        "Written by `tests/reliability/test_bad_inputs.py`. Each input was started as a real execution; "
        "\"refused\" means: the execution ended `CreateFailed` with create-taskset's named error, create-taskset ran "
        "once, the functions made only Describe/List/Get calls, and the services' task sets, the task definitions, "
        "every record, the slots' Cloud Map instances and every alarm were identical before and after.",
        "",
        f"**{len(CATALOGUE)} inputs, {refused} refused as expected.**",
        "",
        "| input | what | expected | execution ended | held |",
        "|---|---|---|---|---|",
    ]
    for b in CATALOGUE:
        got, verdict = seen[b.id]
        mark = "✓" if verdict == "ok" else f"✗ {verdict}"
        lines.append(f"| `{b.id}` | {b.what} | {b.expect} | {got} | {mark} |")
    bugs = [b for b in CATALOGUE if b.bug]
    if bugs:
        lines += ["", "## Known engine / state machine bugs (tests xfail strict)", ""]
        lines += [f"- `{b.id}`: {b.bug}" for b in bugs]
    # Generated: an ignored folder, never a tracked file (issue 14).
    out = HERE.parents[1] / ".local" / "reliability"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inputs.md").write_text("\n".join(lines) + "\n")


def _params():
    for i, b in enumerate(CATALOGUE):
        marks = [pytest.mark.xfail(strict=True, reason=b.bug)] if b.bug else []
        yield pytest.param(i, id=b.id, marks=marks)


CREATE_FAILED = re.compile(r"^create-taskset failed \((\w+): ")


@pytest.mark.parametrize("index", list(_params()))
def test_bad_input_is_refused_and_changes_nothing(index, lane, bad_world):
    bad = CATALOGUE[index]
    w, svc = bad_world["pairs"][index]
    other = bad_world["pairs"][-1][1]
    extra = bad_world["extra"]
    ctx = Ctx(w, svc, other, lane, extra)
    if bad.prepare:
        bad.prepare(ctx)
    body = bad.build(ctx)
    scope = [svc, other, extra["ttl600"]]
    before = rig.snapshot(lane.aws, scope, extra_services=(extra["plain_service"],))
    seq0 = lane.last_call_seq()
    name = bad.name or rig.execution_name(f"bad-{bad.id}")
    arn = rig.start(lane, json.dumps(body), name)
    desc = rig.wait(lane, arn, timeout=300)
    after = rig.snapshot(lane.aws, scope, extra_services=(extra["plain_service"],))
    writes = rig.mutating_calls(lane.aws, seq0)
    error, cause = rig.cause_parts(desc)
    m = CREATE_FAILED.match(cause)
    got = m.group(1) if m else None
    tasks = rig.tasks_scheduled(rig.history(lane, arn))
    diff = rig.snapshot_diff(before, after)
    ended = f"{desc['status']} {error or ''}" + (f" ({got})" if got else "")
    problems = []
    if (desc["status"], error, got) != ("FAILED", "CreateFailed", bad.expect):
        problems.append(f"ended {ended}: {cause[:300]}")
    if tasks != ["create-taskset"]:
        problems.append(f"tasks run {tasks}")
    if writes:
        problems.append(f"the functions wrote: {writes}")
    if diff:
        problems.append(f"the local AWS changed: {diff}")
    bad_world["seen"][bad.id] = (ended, "ok" if not problems else problems[0].split(":")[0])
    assert not problems, f"{bad.id}: " + "; ".join(problems)


def test_catalogue_is_big_enough():
    assert len(CATALOGUE) >= 25
    assert len({b.id for b in CATALOGUE}) == len(CATALOGUE)
