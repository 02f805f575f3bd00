"""The one Route 53 invariant checker (canarytest.invariants) on hand-made
change-log entries shaped like local/localaws/route53_recorder.py's."""

from __future__ import annotations

from typing import Any

from canarytest.invariants import route53_violations

NAME = "my-cname.ns-1"


def rec(slot: str, weight: int | None, healthy: int | None = 2, cloud_map: str | None = "svc") -> dict[str, Any]:
    r: dict[str, Any] = {"type": "CNAME", "setIdentifier": slot, "weight": weight, "ttl": 10, "values": [f"{slot}.ns-2"]}
    if cloud_map is None:  # what the recorder writes for a target that is no Cloud Map service
        r.update({"cloudMapService": None, "instances": 0, "healthyInstances": 0})
    else:
        r.update({"cloudMapService": f"{cloud_map}-{slot}", "instances": healthy or 0, "healthyInstances": healthy or 0})
    return r


def change(records: Any, written: list[dict[str, Any]] | None = None, seq: int = 1) -> dict[str, Any]:
    written = written if written is not None else [{"action": "UPSERT", "name": NAME + ".", "type": "CNAME", "setIdentifier": "green", "weight": 10}]
    return {"seq": seq, "caller": "function", "timeIso": "t", "changes": written, "records": records}


def test_a_split_on_healthy_slots_holds() -> None:
    assert route53_violations([change({NAME: [rec("blue", 90), rec("green", 10)]})]) == []


def test_an_all_zero_group_is_a_violation() -> None:
    bad = route53_violations([change({NAME: [rec("blue", 0), rec("green", 0)]})])
    assert len(bad) == 1 and "every weight is 0" in bad[0]


def test_weight_on_a_slot_without_healthy_instances_is_a_violation() -> None:
    bad = route53_violations([change({NAME: [rec("blue", 90), rec("green", 10, healthy=0)]})])
    assert len(bad) == 1 and "green has weight 10" in bad[0]


def test_weight_on_a_target_that_is_no_cloud_map_service_is_a_violation() -> None:
    # The stricter of the two former checkers: no Cloud Map service counts as 0 healthy.
    bad = route53_violations([change({NAME: [rec("blue", 90), rec("green", 10, cloud_map=None)]})])
    assert len(bad) == 1 and "green" in bad[0]


def test_a_change_the_recorder_could_not_read_is_a_violation() -> None:
    bad = route53_violations([change({"error": "zone not found"})])
    assert len(bad) == 1 and "zone not found" in bad[0]


def test_a_weighted_group_deleted_whole_is_a_violation() -> None:
    bad = route53_violations([change({})])
    assert len(bad) == 1 and "every weight is 0" in bad[0]


def test_a_simple_record_is_not_a_weighted_group() -> None:
    simple = [{"action": "UPSERT", "name": "other.ns-1.", "type": "CNAME", "ttl": 60}]
    other = {"type": "CNAME", "setIdentifier": None, "weight": None, "ttl": 60, "values": ["x"]}
    assert route53_violations([change({"other.ns-1": [other]}, written=simple)]) == []


def test_record_name_limits_the_check_to_that_record() -> None:
    bad = change({NAME: [rec("blue", 0), rec("green", 0)]})
    assert route53_violations([bad], record_name="another.ns-1") == []
    assert len(route53_violations([bad], record_name=NAME + ".")) == 1
