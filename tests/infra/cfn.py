"""Just enough CloudFormation to test the templates offline: a YAML loader
that understands the short intrinsic tags (rule functions included), and an
evaluator of the few intrinsics the tested values use (Ref, Fn::Sub,
Fn::GetAtt, Fn::If, Fn::Join, and the condition functions) over values a
test chooses for parameters and resources. List parameters
(CommaDelimitedList, List<...>) evaluate to lists, as in CloudFormation."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_SCALAR_TAGS = {"Ref": "Ref", "Condition": "Condition"}
_FN_TAGS = [
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If",
    "ImportValue", "Join", "Not", "Or", "Select", "Split", "Sub", "Transform",
    # rule functions
    "Contains", "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll",
]


class _Loader(yaml.SafeLoader):
    pass


def _make_constructor(key):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if key == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag, _key in _SCALAR_TAGS.items():
    _Loader.add_constructor(f"!{_tag}", _make_constructor(_key))
for _tag in _FN_TAGS:
    _Loader.add_constructor(f"!{_tag}", _make_constructor(f"Fn::{_tag}"))


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)


@dataclass
class Stack:
    """Values the evaluator substitutes: parameters as strings, the way
    `--parameter-overrides` gives them (defaults are filled in from the
    template), `Ref`s of resources, `GetAtt`s as "Res.Attr". Conditions are
    evaluated from the template's `Conditions` unless `conditions` forces
    an outcome."""

    template: dict
    parameters: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    region: str = "us-west-2"
    account: str = "123456789012"

    def __post_init__(self):
        for name, spec in self.template.get("Parameters", {}).items():
            if name not in self.parameters and "Default" in spec:
                self.parameters[name] = spec["Default"]

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in self.parameters:
            value = self.parameters[name]
            kind = self.template.get("Parameters", {}).get(name, {}).get("Type", "String")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return value.split(",")
            return value
        for table in (pseudo, self.refs):
            if name in table:
                return table[name]
        raise KeyError(f"no value for Ref {name}")

    def condition(self, name: str) -> bool:
        if name in self.conditions:
            return self.conditions[name]
        return bool(self.evaluate(self.template["Conditions"][name]))

    def attr(self, resource: str, attribute: str) -> str:
        key = f"{resource}.{attribute}"
        if key not in self.attrs:
            raise KeyError(f"no value for GetAtt {key}")
        return self.attrs[key]

    def rule_failures(self) -> list:
        """The AssertDescription of every rule assertion that fails for these
        parameters (what CloudFormation refuses the stack with)."""
        failures = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.evaluate(assertion["Assert"]):
                    failures.append(assertion["AssertDescription"])
        return failures

    def evaluate(self, node):
        if isinstance(node, list):
            return [self.evaluate(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.attr(*arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.evaluate(yes if self.condition(name) else no)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = self.evaluate(arg)
                return left == right
            if key == "Fn::Not":
                (value,) = self.evaluate(arg)
                return not value
            if key == "Fn::And":
                return all(self.evaluate(arg))
            if key == "Fn::Or":
                return any(self.evaluate(arg))
            if key == "Fn::EachMemberEquals":
                members, value = self.evaluate(arg)
                return all(m == value for m in members)
            if key == "Fn::EachMemberIn":
                members, allowed = self.evaluate(arg)
                return all(m in allowed for m in members)
            if key == "Fn::Contains":
                allowed, value = self.evaluate(arg)
                return value in allowed
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(self.evaluate(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
        return {k: self.evaluate(v) for k, v in node.items()}

    def _sub(self, arg) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.evaluate(v) for k, v in local.items()}

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.attr(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)
