"""Issue 5, part 1: a fault at every AWS call a deployment makes.

One parametrized test per case; the session fixture runs the selected cases
on parallel lanes first (.local/reliability/results.md / results.json when the
whole matrix ran), then each test asserts its own case.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import matrix
from rig import lane_count

HERE = Path(__file__).resolve().parent

CASES = {c.id: c for c in matrix.derive()}
# Generated results go to an ignored folder, never over tracked files (issue 14).
OUT_DIR = HERE.parents[1] / ".local" / "reliability"


def _params():
    for case_id in CASES:
        marks = [] if case_id in matrix.FAST else [pytest.mark.slow]
        yield pytest.param(case_id, id=case_id, marks=marks)


@pytest.fixture(scope="session")
def matrix_results(request, lanes):
    # Exactly the cases this session runs (after -m / -k deselection).
    selected = [
        CASES[item.callspec.params["case_id"]]
        for item in request.session.items
        if item.originalname == "test_fault_case" and item.module.__name__ == __name__
    ]
    n = min(lane_count(), max(1, len(selected) // 4)) if len(selected) > len(matrix.FAST) else 1
    results, wall = matrix.run_cases(lanes.get(n), selected)
    text, doc = matrix.report(results, wall, n)
    whole = len(selected) == len(CASES)
    out_dir = OUT_DIR if whole else OUT_DIR / "partial"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(text)
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nfault matrix: {doc['held']}/{doc['runs']} held in {wall:.0f} s on {n} lanes -> {out_dir / 'results.md'}")
    return {r.case.id: r for r in results}


@pytest.mark.parametrize("case_id", list(_params()))
def test_fault_case(case_id, matrix_results):
    r = matrix_results[case_id]
    detail = "; ".join(r.problems + r.violations)
    assert r.held, f"{case_id}: {r.outcome} after {r.seconds} s ({r.fired} faults fired): {detail}"


def test_calls_json_is_current(lane):
    """A clean run of each scenario today makes the calls calls.json lists
    (same operations, same counts); otherwise regenerate it:
    `.venv/bin/python tests/reliability/gen_calls.py`."""
    import gen_calls

    doc = matrix.load_calls()
    for name in doc["scenarios"]:
        now = gen_calls.record(lane, name)
        assert now["counts"] == doc["scenarios"][name]["counts"], (
            f"{name}: the functions' calls changed; regenerate calls.json. now {now['counts']}, "
            f"listed {doc['scenarios'][name]['counts']}"
        )
        assert now["states"] == doc["scenarios"][name]["states"], name


def test_calls_json_lists_every_scenario():
    """The matrix is derived from a real run, not a guess."""
    doc = matrix.load_calls()
    assert set(doc["scenarios"]) == {"canary", "rollback", "repair"}
    assert doc["scenarios"]["canary"]["outcome"] == "SUCCEEDED"
    assert doc["scenarios"]["rollback"]["outcome"] == "RolledBackOnAlarm"
    # Issue 15: the repair of a deployment stopped in its first bake.
    repair = doc["scenarios"]["repair"]
    assert repair["outcome"] == "restored" and repair["states"][-1] == "Bake"
    assert {"route53:ChangeResourceRecordSets", "ecs:DeleteTaskSet", "stepfunctions:StartExecution"} <= set(repair["repairCounts"])
    assert any(c.scenario == "repair" for c in CASES.values())
    ops = {(c["service"], c["operation"]) for s in doc["scenarios"].values() for c in s["calls"]}
    assert ("route53", "ChangeResourceRecordSets") in ops and ("ecs", "CreateTaskSet") in ops
    assert len(CASES) >= 100


def test_fast_cases_exist():
    """Every case `make test` runs is a case of today's matrix (calls.json renumbers calls)."""
    assert set(matrix.FAST) <= set(CASES), set(matrix.FAST) - set(CASES)
