"""Route 53's conditional change semantics, which the engine's deployment
lock relies on (shared/src/plan.rs, DeploymentLock).

Route 53 API Reference, ChangeResourceRecordSets: a change batch is applied
entirely or not at all; `CREATE` fails with InvalidChangeBatch ("Tried to
create resource record set ... but it already exists") when a record set of
that name, type (and set identifier) exists; `DELETE` must name all the
values the record set has, and otherwise fails with InvalidChangeBatch
("Tried to delete resource record set ... but it was not found").

Stock moto overwrites on CREATE unless the very same change is in its
journal, and answers a DELETE that does not match with InvalidInput. This
patch checks the whole batch first, against the zone as each earlier change
of the batch leaves it, then lets moto apply it.
"""

from __future__ import annotations

from typing import Any

from moto.route53 import models as r53_models
from moto.route53.exceptions import ResourceRecordAlreadyExists, Route53ClientError

_original = None


class _NotFound(Route53ClientError):
    def __init__(self, name: str, _type: str):
        super().__init__(
            "InvalidChangeBatch",
            f"Tried to delete resource record set [name='{name}', type='{_type}'] but it was not found",
        )


def _name(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _key(name: str, _type: Any, set_id: Any) -> tuple[str, str, str]:
    return (_name(name), str(_type), str(set_id or ""))


def _values(records: list[Any]) -> list[str]:
    return sorted(str(r["Value"]) if isinstance(r, dict) else str(r) for r in records or [])


def _patched(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    zone = self.get_hosted_zone(zoneid)
    present: dict[tuple[str, str, str], tuple[str, list[str]]] = {
        _key(r.name, r.type, r.set_identifier): (str(r.ttl), _values(r.records)) for r in zone.rrsets
    }
    for change in change_list:
        rs = change["ResourceRecordSet"]
        key = _key(rs["Name"], rs.get("Type"), rs.get("SetIdentifier"))
        shape = (str(rs.get("TTL")), _values(rs.get("ResourceRecords", [])))
        action = change["Action"]
        if action == "CREATE":
            if key in present:
                raise ResourceRecordAlreadyExists(name=_name(rs["Name"]), _type=str(rs.get("Type")))
            present[key] = shape
        elif action == "DELETE":
            found = present.get(key)
            # Alias records carry no TTL or values to compare.
            if found is None or ("AliasTarget" not in rs and found != shape):
                raise _NotFound(_name(rs["Name"]), str(rs.get("Type")))
            del present[key]
        else:
            present[key] = shape
    assert _original is not None
    _original(self, zoneid, change_list)


def apply() -> None:
    global _original
    if _original is None:
        _original = r53_models.Route53Backend.change_resource_record_sets
        r53_models.Route53Backend.change_resource_record_sets = _patched
