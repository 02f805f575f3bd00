#!/usr/bin/env python3
"""Writes the Mermaid flowchart of deployment.asl.json to flow.mmd.

The diagram is derived from the definition only, so it cannot drift: a test
(tests/statemachine/test_diagram.py) fails when the committed flow.mmd differs
from what this script makes. Run it after changing the definition:

    python3 statemachine/diagram.py          # rewrite flow.mmd and the block in README.md
    python3 statemachine/diagram.py --check  # exit 1 if either is stale

Shapes: Task = rectangle, Choice = rhombus, Wait = stadium, Pass = parallelogram,
Succeed/Fail = double circle / subroutine. Solid arrows are Next/Choice
branches, dotted arrows are Catch branches labelled with the errors they match.
The alarm-rollback function, which is not part of the definition but ends a
`.waitForTaskToken` bake early, is drawn as an outside actor.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASL = HERE / "deployment.asl.json"
OUT = HERE / "flow.mmd"
README = HERE / "README.md"
TOKEN_RESOURCE = "arn:aws:states:::lambda:invoke.waitForTaskToken"
# A deployment event: drawn with its detail-type; its Catch goes to its own
# Next (a failed send never changes the path), so that edge is not drawn.
EVENTS_RESOURCE = "arn:aws:states:::events:putEvents"
FUNCTION_NAMES = {
    "${CreateTaskSetFunction}": "create-taskset",
    "${SetWeightFunction}": "set-weight",
    "${CheckHealthFunction}": "check-health",
    "${DeleteTaskSetFunction}": "delete-taskset",
}
OPERATORS = {
    "Equals": "=",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "≤",
    "GreaterThanEquals": "≥",
}


def node_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return slug + "_" if slug in {"end", "graph", "subgraph", "start"} else slug


def text(s: str) -> str:
    return s.replace('"', "#quot;")


def short_path(path: str) -> str:
    """`$.deployment.strategy.bakeSeconds` -> `strategy.bakeSeconds`."""
    if not path.startswith("$."):
        return path
    return ".".join(path[2:].split(".")[-2:])


def condition(rule: dict) -> str:
    for key, value in rule.items():
        if key in ("Next", "Variable"):
            continue
        if key in ("And", "Or"):
            joiner = " and " if key == "And" else " or "
            return joiner.join(condition(r) for r in value)
        if key == "Not":
            return "not " + condition(value)
        m = re.fullmatch(r"(String|Numeric|Boolean|Timestamp)(\w+?)(Path)?", key)
        if m:
            op = OPERATORS.get(m.group(2), m.group(2))
            rhs = short_path(value) if m.group(3) else json.dumps(value)
            return f"{short_path(rule['Variable'])} {op} {rhs}"
        if key.startswith("Is"):
            return f"{short_path(rule['Variable'])} {key} {json.dumps(value)}"
    raise ValueError(f"unsupported Choice rule: {rule}")


def node(name: str, state: dict, asl_states: dict) -> str:
    typ = state["Type"]
    nid = node_id(name)
    if typ == "Task" and state["Resource"] == EVENTS_RESOURCE:
        detail_type = state["Parameters"]["Entries"][0]["DetailType"]
        return f'{nid}>"{text(name)}<br/><i>event: {text(detail_type)}</i>"]'
    if typ == "Task":
        fn = FUNCTION_NAMES.get(state.get("Parameters", {}).get("FunctionName", ""), "?")
        suffix = " · waits for task token" if state["Resource"] == TOKEN_RESOURCE else ""
        return f'{nid}["{text(name)}<br/><i>{fn}{suffix}</i>"]'
    if typ == "Choice":
        return f'{nid}{{"{text(name)}"}}'
    if typ == "Wait":
        if "TimestampPath" in state or "Timestamp" in state:
            until = state.get("TimestampPath", state.get("Timestamp"))
            return f'{nid}(["{text(name)}<br/><i>until {text(short_path(str(until)))}</i>"])'
        seconds = state.get("SecondsPath", state.get("Seconds"))
        return f'{nid}(["{text(name)}<br/><i>{text(short_path(str(seconds)))}</i>"])'
    if typ == "Pass":
        return f'{nid}[/"{text(name)}"/]'
    if typ == "Succeed":
        return f'{nid}((("{text(name)}")))'
    if typ == "Fail":
        error = state.get("Error") or " / ".join(errors_from_path(asl_states, state["ErrorPath"]))
        return f'{nid}[["{text(name)}<br/><b>{text(error)}</b>"]]'
    raise ValueError(f"unsupported state type {typ}")


def errors_from_path(states: dict, path: str) -> list[str]:
    """The static error names Pass states write where a Fail's ErrorPath reads."""
    parent, _, key = path.rpartition(".")
    found = [
        s["Parameters"][key]
        for s in states.values()
        if s["Type"] == "Pass" and s.get("ResultPath") == parent and key in s.get("Parameters", {})
    ]
    return list(dict.fromkeys(found)) or ["error from " + short_path(path)]


def edges(name: str, state: dict) -> list[str]:
    src = node_id(name)
    out = []
    for i, rule in enumerate(state.get("Choices", [])):
        out.append(f'{src} -->|"{text(condition(rule))}"| {node_id(rule["Next"])}')
    if "Default" in state:
        out.append(f'{src} -->|"otherwise"| {node_id(state["Default"])}')
    if "Next" in state:
        out.append(f"{src} --> {node_id(state['Next'])}")
    catches = state.get("Catch", [])
    if state.get("Resource") == EVENTS_RESOURCE and all(c["Next"] == state.get("Next") for c in catches):
        catches = []
    for catch in catches:
        everything = "any other error" if len(catches) > 1 else "any error"
        errors = ", ".join(everything if e == "States.ALL" else e for e in catch["ErrorEquals"])
        out.append(f'{src} -.->|"{text(errors)}"| {node_id(catch["Next"])}')
    return out


def render(asl: dict) -> str:
    lines = [
        "%% Generated by statemachine/diagram.py from statemachine/deployment.asl.json: do not edit.",
        "flowchart TD",
        '  start(("start")) --> ' + node_id(asl["StartAt"]),
    ]
    for name, state in asl["States"].items():
        lines.append("  " + node(name, state, asl["States"]))
    for name, state in asl["States"].items():
        lines.extend("  " + e for e in edges(name, state))
    for name, state in asl["States"].items():
        if state.get("Resource") == TOKEN_RESOURCE:
            lines.append('  alarm_rollback>"alarm-rollback function<br/><i>on a CloudWatch alarm state change event</i>"]')
            lines.append(f'  alarm_rollback -.->|"weights back, then SendTaskFailure AlarmFiring"| {node_id(name)}')
    fails = [node_id(n) for n, s in asl["States"].items() if s["Type"] == "Fail"]
    done = [node_id(n) for n, s in asl["States"].items() if s["Type"] == "Succeed"]
    events = [node_id(n) for n, s in asl["States"].items() if s.get("Resource") == EVENTS_RESOURCE]
    lines += [
        "  classDef fail fill:#fde2e1,stroke:#b42318,color:#611a15",
        "  classDef done fill:#dcfae6,stroke:#067647,color:#074d31",
        "  classDef actor fill:#fef0c7,stroke:#b54708,color:#4e1d09",
        "  classDef event fill:#e0f2fe,stroke:#026aa2,color:#0b4a6f",
        f"  class {','.join(fails)} fail",
        f"  class {','.join(done)} done",
        "  class alarm_rollback actor",
    ]
    if events:
        lines.append(f"  class {','.join(events)} event")
    return "\n".join(lines) + "\n"


# The top-level README shows the flow in the mermaid block right after this marker.
TOP_README = HERE.parent / "README.md"
TOP_MARKER = "<!-- state-machine-flow: generated by statemachine/diagram.py -->"


def with_diagram(readme: str, rendered: str, marker: str | None = None) -> str:
    """`readme` with its first mermaid block (or the one right after `marker`) replaced."""
    block = "```mermaid\n" + rendered + "```"
    if marker is None:
        return re.sub(r"```mermaid\n.*?```", lambda _: block, readme, count=1, flags=re.S)
    pattern = re.escape(marker) + r"\n```mermaid\n.*?```"
    return re.sub(pattern, lambda _: marker + "\n" + block, readme, count=1, flags=re.S)


def readmes() -> list[tuple[Path, str | None]]:
    return [(README, None), (TOP_README, TOP_MARKER)]


def main(argv: list[str]) -> int:
    rendered = render(json.loads(ASL.read_text()))
    if "--check" in argv:
        stale = not OUT.exists() or OUT.read_text() != rendered
        for path, marker in readmes():
            if path.exists():
                text = path.read_text()
                stale |= with_diagram(text, rendered, marker) != text
        if stale:
            print("statemachine/flow.mmd or a README is stale: run python3 statemachine/diagram.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(rendered)
    print(f"wrote {OUT.relative_to(HERE.parent)}")
    for path, marker in readmes():
        if path.exists():
            text = path.read_text()
            if with_diagram(text, rendered, marker) != text:
                path.write_text(with_diagram(text, rendered, marker))
                print(f"updated the diagram in {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
