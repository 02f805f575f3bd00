"""What EventBridge does with a rule, reimplemented for offline tests:
event pattern matching (the operators our rules use) and the input
transformer (InputPathsMap + InputTemplate)."""

import json
import re

_MISSING = object()


def json_path(event: dict, path: str):
    """EventBridge input paths: `$` then dot-separated keys (dashes allowed)."""
    if path == "$":
        return event
    if not path.startswith("$."):
        raise ValueError(f"unsupported input path {path!r}")
    value = event
    for key in path[2:].split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def transform_input(transformer: dict, event: dict) -> str:
    """Fill `<name>` placeholders of InputTemplate with the InputPathsMap
    values the way EventBridge does: inside a JSON string a string value goes
    in bare (escaped for JSON), anywhere else the value goes in as JSON (so a
    string gets its quotes). Text in angle brackets that is not a defined
    variable stays as it is."""
    values = {}
    for name, path in transformer.get("InputPathsMap", {}).items():
        value = json_path(event, path)
        if value is _MISSING:
            raise KeyError(f"input path {path} is not in the event")
        values[name] = value
    values.setdefault("aws.events.event.json", json.dumps(event))

    template = transformer["InputTemplate"]
    out = []
    in_string = False
    i = 0
    while i < len(template):
        c = template[i]
        if c == "<":
            m = re.match(r"<([A-Za-z0-9_.\-]+)>", template[i:])
            if m and m.group(1) in values:
                value = values[m.group(1)]
                if in_string and isinstance(value, str):
                    out.append(json.dumps(value)[1:-1])
                else:
                    out.append(json.dumps(value))
                i += len(m.group(0))
                continue
        if in_string and c == "\\":
            out.append(template[i : i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        out.append(c)
        i += 1
    return "".join(out)


def matches(pattern, value, present=True) -> bool:
    """Does one event value (or sub-object) satisfy one pattern node?"""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(
            matches(sub, value.get(key), key in value) for key, sub in pattern.items()
        )
    # An array in the event (e.g. `resources`) matches when any of its
    # elements does (EventBridge User Guide, "Event patterns": arrays).
    if present and isinstance(value, list):
        return any(matches(pattern, v) for v in value)
    # A list: any of its alternatives.
    for alt in pattern:
        if isinstance(alt, dict):
            (op, arg), = alt.items()
            if op == "exists" and present == arg:
                return True
            if not present or not isinstance(value, str):
                continue
            if op == "prefix" and value.startswith(arg):
                return True
            if op == "wildcard" and re.fullmatch(
                ".*".join(re.escape(part) for part in arg.split("*")), value
            ):
                return True
        elif present and value == alt:
            return True
    return False
