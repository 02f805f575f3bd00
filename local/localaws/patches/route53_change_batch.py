"""Route 53: ChangeResourceRecordSets as one transaction with AWS's DELETE
and CREATE rules.

Route 53 API Reference, ChangeResourceRecordSets: the changes of a batch are
applied in order as a transaction (all or none); "To delete a resource record
set, you must specify all the same values that you specified when you created
it", otherwise the batch fails with InvalidChangeBatch ("Tried to delete
resource record set ... but the values provided do not match the current
values"); CREATE of a record set that exists fails the same way ("... but it
already exists"). The engine relies on this for a compare-and-swap (DELETE
the records as read + CREATE the new ones in one batch).

moto 5.2.5 differs three ways: its DELETE of a record with a SetIdentifier
deletes every record with that SetIdentifier in the zone, whatever its name
(two services with slots "blue" in one zone lose each other's records); it
checks a DELETE only against a journal of past writes with the same
name/TTL/values, not against the record as it is now (weight and set
identifier ignored); and it refuses a CREATE that repeats an earlier CREATE
even when the same batch first DELETEs that record."""

from __future__ import annotations

import copy
from typing import Any

from moto.route53 import models as r53_models
from moto.route53.exceptions import Route53ClientError
from moto.route53.utils import validate_domain_name


class InvalidChangeBatch(Route53ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidChangeBatch", message)


def _norm(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _key(rr: Any) -> tuple[str, str, str | None]:
    if isinstance(rr, dict):
        return (_norm(rr["Name"]), rr.get("Type") or "", rr.get("SetIdentifier"))
    return (_norm(rr.name), rr.type or "", rr.set_identifier)


def _values(rr: Any) -> tuple[str, str, tuple[str, ...]]:
    """(TTL, Weight, record values) as comparable strings."""
    if isinstance(rr, dict):
        recs = tuple(str(r["Value"]) if isinstance(r, dict) else str(r) for r in rr.get("ResourceRecords") or [])
        return (str(rr.get("TTL")), str(rr.get("Weight")), recs)
    return (str(rr.ttl), str(rr.weight), tuple(str(v) for v in rr.records or []))


def _describe(rr: dict[str, Any]) -> str:
    return f"[name='{_norm(rr['Name'])}', type='{rr.get('Type')}', set-identifier='{rr.get('SetIdentifier')}']"


def _patched(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    the_zone = self.get_hosted_zone(zoneid)
    for value in change_list:
        validate_domain_name(value["ResourceRecordSet"]["Name"], code="InvalidChangeBatch")
    # Validate the whole batch in order on a copy of the zone's keys first:
    # nothing is applied unless every change is valid.
    current = {_key(rr): _values(rr) for rr in the_zone.rrsets}
    for value in change_list:
        action = value["Action"]
        rr = value["ResourceRecordSet"]
        key = _key(rr)
        if action == "CREATE":
            if key in current:
                raise InvalidChangeBatch(f"Tried to create resource record set {_describe(rr)} but it already exists")
            current[key] = _values(rr)
        elif action == "DELETE":
            if key not in current:
                raise InvalidChangeBatch(f"Tried to delete resource record set {_describe(rr)} but it was not found")
            if current[key] != _values(rr):
                raise InvalidChangeBatch(
                    f"Tried to delete resource record set {_describe(rr)} but the values provided do not match the current values"
                )
            del current[key]
        elif action == "UPSERT":
            current[key] = _values(rr)
        else:
            from moto.route53.exceptions import InvalidActionValue

            raise InvalidActionValue(action)
    if not any(v["Action"] == "DELETE" for v in change_list):
        # No DELETE: moto's own path (its checks pass for valid CREATE/UPSERT).
        return _original(self, zoneid, [v for v in change_list])
    for value in change_list:
        original_change = copy.deepcopy(value)
        action = value["Action"]
        record_set = value["ResourceRecordSet"]
        if not record_set["Name"].strip(".").endswith(the_zone.name.strip(".")):
            from moto.route53.exceptions import DnsNameInvalidForZone

            raise DnsNameInvalidForZone(name=record_set["Name"], zone_name=the_zone.name)
        if not record_set["Name"].endswith("."):
            record_set["Name"] += "."
        if action in ("CREATE", "UPSERT"):
            if "ResourceRecords" in record_set:
                record_set["ResourceRecords"] = [x["Value"] for x in record_set["ResourceRecords"]]
            if action == "CREATE":
                the_zone.add_rrset(record_set)
            else:
                the_zone.upsert_rrset(record_set)
        else:
            key = _key(record_set)
            the_zone.rrsets = [r for r in the_zone.rrsets if _key(r) != key]
        the_zone.rr_changes.append(original_change)
    return None


_original: Any = None


def apply() -> None:
    global _original
    _original = r53_models.Route53Backend.change_resource_record_sets
    r53_models.Route53Backend.change_resource_record_sets = _patched  # type: ignore[method-assign]  # patches moto's method
