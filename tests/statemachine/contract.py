"""Reads the Rust contract (shared/src/model.rs, shared/src/error.rs) well
enough to check the state machine against it: the JSON field names of each
request/answer type and which of them are optional, and the stable error
names. A plain-text reader on purpose: the types are simple serde structs with
`rename_all = "camelCase"`, and the tests must run without a Rust build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL_RS = REPO / "shared" / "src" / "model.rs"
ERROR_RS = REPO / "shared" / "src" / "error.rs"


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Field:
    name: str  # JSON (camelCase) name
    rust_type: str
    optional: bool  # may be absent from JSON (Option or #[serde(default)])
    skipped_when_none: bool  # absent from serialized output when None


def _body(text: str, start: int) -> str:
    """The text between the brace at `start` and its matching brace."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise ValueError("unbalanced braces in model.rs")


def _fields(body: str) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    attrs: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("#["):
            attrs.append(line)
            continue
        m = re.match(r"(?:pub\s+)?(\w+)\s*:\s*(.+?),?$", line)
        if m:
            name, typ = m.groups()
            attr = " ".join(attrs)
            fields[camel(name)] = Field(
                name=camel(name),
                rust_type=typ,
                optional=typ.startswith("Option<") or "default" in attr,
                skipped_when_none="skip_serializing_if" in attr,
            )
        attrs = []
    return fields


def struct(name: str, text: str | None = None) -> dict[str, Field]:
    text = text if text is not None else MODEL_RS.read_text()
    m = re.search(rf"pub struct {name}\s*\{{", text)
    if not m:
        raise KeyError(f"struct {name} not found in model.rs")
    return _fields(_body(text, m.end() - 1))


def enum_variant(enum: str, variant: str, text: str | None = None) -> dict[str, Field]:
    text = text if text is not None else MODEL_RS.read_text()
    m = re.search(rf"pub enum {enum}\s*\{{", text)
    if not m:
        raise KeyError(f"enum {enum} not found in model.rs")
    body = _body(text, m.end() - 1)
    v = re.search(rf"\b{variant}\s*\{{", body)
    if not v:
        raise KeyError(f"variant {enum}::{variant} not found in model.rs")
    return _fields(_body(body, v.end() - 1))


def error_types() -> list[str]:
    text = ERROR_RS.read_text()
    m = re.search(r"ALL_TYPES[^=]*=\s*&\[(.*?)\];", text, re.S)
    if not m:
        raise KeyError("CanaryError::ALL_TYPES not found in error.rs")
    return re.findall(r'"(\w+)"', m.group(1))


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
        "RollbackFailed",
        "CleanupFailed",
        "OldTaskSetNotDeleted",
    }
)
