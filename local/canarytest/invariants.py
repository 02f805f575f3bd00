"""The Route 53 traffic invariants, checked over the local AWS's change log
(`aws.route53_changes()`: every successful ChangeResourceRecordSets with the
records of the changed names and their Cloud Map health at that moment,
local/localaws/route53_recorder.py). One checker for the end-to-end and the
reliability suites:

- a weighted group is never all-zero;
- no record with weight > 0 points at a Cloud Map service with 0 healthy
  instances (a target that is no Cloud Map service counts as 0 healthy);
- a change the recorder could not snapshot is itself a violation (nothing
  could be checked).
"""

from __future__ import annotations

from typing import Any

from localaws import LocalAws

from .world import Service


def norm(name: str) -> str:
    """A record name as the recorder keys it: no trailing dot, lower case."""
    return name.rstrip(".").lower()


def route53_violations(changes: list[dict[str, Any]], record_name: str | None = None) -> list[str]:
    """One sentence per violation of the invariants above in ``changes``
    (empty: all held), over every weighted record name each change touched,
    or only ``record_name``'s."""
    bad: list[str] = []
    for c in changes:
        where = f"change #{c['seq']} by {c.get('caller')} at {c.get('timeIso')}"
        recs = c.get("records") or {}
        if isinstance(recs.get("error"), str):
            bad.append(f"{where}: the recorder could not read the records ({recs['error']})")
            continue
        written = [x for x in c.get("changes", []) if x.get("name")]
        touched = {norm(x["name"]) for x in written}
        if record_name is not None:
            touched &= {norm(record_name)}
        for name in sorted(touched):
            group = [r for r in recs.get(name, []) if r.get("setIdentifier") is not None]
            weighted_write = any(norm(x["name"]) == name and x.get("setIdentifier") is not None for x in written)
            if not group and not weighted_write:
                continue  # a simple record: no weighted group to check
            if sum(r.get("weight") or 0 for r in group) == 0:
                bad.append(f"{where} on {name}: every weight is 0 ({[(r['setIdentifier'], r.get('weight')) for r in group]})")
            for r in group:
                if (r.get("weight") or 0) > 0 and not r.get("healthyInstances"):
                    bad.append(
                        f"{where} on {name}: {r['setIdentifier']} has weight {r['weight']} but {r.get('cloudMapService')} "
                        f"has {r.get('healthyInstances', 0)} healthy of {r.get('instances', 0)} instances"
                    )
    return bad


def assert_invariants(aws: LocalAws, svc: Service | None = None) -> list[dict[str, Any]]:
    """Asserts the invariants over the change log since the last reset
    (only ``svc``'s weighted record when given); returns the log. The
    harness's own writes (world.build's blue 100 / green 0, made while the
    blue tasks still start) are the world's setup, not a deployment's: every
    other writer is checked."""
    changes = aws.route53_changes()
    checked = [c for c in changes if c.get("caller") != "harness"]
    bad = route53_violations(checked, svc.record_name if svc else None)
    assert not bad, "traffic invariant broken:\n" + "\n".join(bad)
    return changes
