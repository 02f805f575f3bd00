"""The engine's contract as the Python tests see it: read from
contract/contract.json, which shared/tests/contract.rs generates from the
Rust types (JSON Schemas by schemars, the error kinds, the AWS actions each
function may call) and keeps current (`cargo test` fails while it is stale;
`UPDATE_CONTRACT=1 cargo test -p canary-engine --test contract` rewrites
it). No Rust build is needed here, and no Rust source is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONTRACT_JSON = REPO / "contract" / "contract.json"


@cache
def load() -> dict[str, Any]:
    return json.loads(CONTRACT_JSON.read_text())


def schemas(direction: str = "deserialize") -> dict[str, Any]:
    """The `$defs` of every model type, as the functions read JSON
    (`deserialize`) or write it (`serialize`)."""
    return load()["schemas"][direction]


@dataclass(frozen=True)
class Field:
    name: str  # JSON (camelCase) name
    type_name: str | None  # the model type it holds (through Option / Vec), if any
    optional: bool  # may be absent from JSON the functions read
    skipped_when_none: bool  # may be absent from JSON the functions write


def ref_name(schema: dict[str, Any]) -> str | None:
    """The model type a property schema names: its `$ref`, or that of its
    non-null `anyOf` branch, or of its array items."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for branch in schema.get("anyOf", []):
        if (name := ref_name(branch)) is not None:
            return name
    if isinstance(schema.get("items"), dict):
        return ref_name(schema["items"])
    return None


def _fields(de: dict[str, Any], ser: dict[str, Any] | None) -> dict[str, Field]:
    required_in = set(de.get("required", []))
    required_out = set((ser or de).get("required", []))
    return {
        name: Field(
            name=name,
            type_name=ref_name(prop),
            optional=name not in required_in,
            skipped_when_none=name not in required_out,
        )
        for name, prop in de.get("properties", {}).items()
    }


def struct(name: str) -> dict[str, Field]:
    """The fields of a model struct (a JSON object)."""
    de, ser = schemas("deserialize"), schemas("serialize")
    if name not in de or "properties" not in de[name]:
        raise KeyError(f"{name}: not a struct of contract/contract.json")
    return _fields(de[name], ser.get(name))


def _variant(schema: dict[str, Any], tag: str, value: str) -> dict[str, Any] | None:
    for branch in schema.get("oneOf", []):
        if branch.get("properties", {}).get(tag, {}).get("const") == value:
            return branch
    return None


def enum_variant(enum: str, variant: str, tag: str = "check") -> dict[str, Field]:
    """The fields of one variant of an internally tagged enum (the tag
    field included), e.g. `enum_variant("CheckRequest", "Readiness")`."""
    value = variant[0].lower() + variant[1:]
    de = _variant(schemas("deserialize").get(enum, {}), tag, value)
    ser = _variant(schemas("serialize").get(enum, {}), tag, value)
    if de is None:
        raise KeyError(f"variant {enum}::{variant} not in contract/contract.json")
    return _fields(de, ser)


def error_types() -> list[str]:
    """Every `error_type` a function can return, in README order."""
    return [e["errorType"] for e in load()["errorTypes"]]


def functions() -> dict[str, dict[str, Any]]:
    """Function name -> input/output type names and AWS actions."""
    return load()["functions"]


def aws_actions(function: str) -> set[str]:
    """The AWS actions a clean run of `function` makes."""
    return set(functions()[function]["awsActions"])


def error_path_aws_actions(function: str) -> set[str]:
    """The AWS actions `function` makes only on an error path."""
    return set(functions()[function]["errorPathAwsActions"])


def state_groups() -> dict[str, list[str]]:
    """`plan::states`: the state names abort and repair decide on, by group."""
    return load()["stateGroups"]


def launch_types() -> set[str]:
    """What `target.network.launchType` accepts."""
    return set(load()["launchTypes"])


# The Fail states' Error names: the CLI, the README and the reliability
# suite depend on them (test_definition checks the ASL has exactly these).
FAIL_ERRORS = frozenset(
    {
        "CreateFailed",
        "NewTaskSetNotReady",
        "FirstDeploymentFailed",
        "RolledBackOnAlarm",
        "RolledBackOnError",
        "RolledBackOnAbort",
        "RolledBackOnReject",
        "RolledBackOnApprovalTimeout",
        "RollbackFailed",
        "CleanupFailed",
        "OldTaskSetNotDeleted",
    }
)
