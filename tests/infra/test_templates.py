"""Offline checks of infra/: the ECR push rules turn a real-shaped ECR event
into a DeploymentRequest the functions accept, the per-service outputs are
exactly the deployment input's `target` (with its optional `network` when
the stack is given subnets), and the event patterns select what they should.

"Accept" is judged against shared/src/model.rs itself: its structs are read
(field names, Rust types, which fields serde requires) and every produced
value is checked against them, nested structs, lists and enums included.

The produced request is kept in tests/fixtures/deployment-request-from-ecr.json
so the Rust side can deserialize the very same JSON with the real type.
Regenerate it with UPDATE_FIXTURES=1.
"""

import copy
import json
import os
import re
from pathlib import Path

import pytest

from cfn import Stack, load
from eventbridge import matches, transform_input

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SYSTEM = load(ROOT / "infra" / "template.yaml")
SERVICE = load(ROOT / "infra" / "service.yaml")
MODEL = (ROOT / "shared" / "src" / "model.rs").read_text()
ECS_ADAPTER = (ROOT / "shared" / "src" / "aws" / "ecs.rs").read_text()
ECR_EVENT = json.loads((FIXTURES / "ecr-push-event.json").read_text())
REQUEST_FIXTURE = FIXTURES / "deployment-request-from-ecr.json"

STRATEGY = '{"steps": [10, 50, 100], "bakeSeconds": 300}'
ALARMS = '{"names": ["canary-orders-5xx", "canary-orders-latency"], "insufficientData": "pass"}'
BLUE_ARN = "arn:aws:servicediscovery:us-west-2:123456789012:service/srv-b1ue0000000000001"
GREEN_ARN = "arn:aws:servicediscovery:us-west-2:123456789012:service/srv-9reen000000000002"
EXPECTED_TARGET = {
    "cluster": "prod",
    "service": "orders",
    "container": "app",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "recordName": "orders.canary.internal",
    "slots": {
        "blue": {"setIdentifier": "blue", "registryArn": BLUE_ARN, "dnsName": "orders-blue.svc.internal"},
        "green": {"setIdentifier": "green", "registryArn": GREEN_ARN, "dnsName": "orders-green.svc.internal"},
    },
}
# service.yaml parameters for the first task set's networking, and the
# `target.network` they must give.
NETWORK_PARAMS = {
    "Subnets": "subnet-0a1b2c3d4e5f60001,subnet-0a1b2c3d4e5f60002",
    "SecurityGroups": "sg-0123456789abcdef0",
    "AssignPublicIp": "false",
    "LaunchType": "FARGATE",
}
EXPECTED_NETWORK = {
    "subnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    "securityGroups": ["sg-0123456789abcdef0"],
    "assignPublicIp": False,
    "launchType": "FARGATE",
}
EXPECTED_TARGET_WITH_NETWORK = {**EXPECTED_TARGET, "network": EXPECTED_NETWORK}


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _body(kind: str, name: str) -> str:
    body = re.search(r"pub " + kind + " " + name + r" \{(.*?)\n\}", MODEL, re.S)
    assert body, f"{kind} {name} not found in model.rs"
    return body.group(1)


def struct_fields(struct: str) -> dict:
    """JSON name -> (Rust type, required) of a struct in model.rs. Required:
    neither an Option nor `#[serde(default)]`."""
    found, attributes = {}, ""
    for line in _body("struct", struct).splitlines():
        line = line.strip()
        if line.startswith("#["):
            attributes += line
        elif m := re.fullmatch(r"pub (\w+): (.+),", line):
            rust_type = m.group(2)
            required = not rust_type.startswith("Option<") and "serde(default" not in attributes
            found[camel(m.group(1))] = (rust_type, required)
            attributes = ""
    assert found, f"no fields read from struct {struct}"
    return found


def fields(struct: str) -> set:
    """The JSON field names of a struct in shared/src/model.rs."""
    return set(struct_fields(struct))


def required_fields(struct: str) -> set:
    return {name for name, (_, required) in struct_fields(struct).items() if required}


def enum_values(enum: str):
    """The JSON values of a unit-variant enum in model.rs (its
    `rename_all` applied), or None when `enum` is not an enum there."""
    at = MODEL.find(f"pub enum {enum} {{")
    if at < 0:
        return None
    rename = re.findall(r'rename_all = "(\w+)"', MODEL[:at].rsplit("\n}", 1)[-1])
    assert rename and rename[-1] in {"lowercase", "camelCase"}, f"enum {enum}: unknown rename_all"
    variants = re.findall(r"^\s*(\w+),\s*$", _body("enum", enum), re.M)
    if rename[-1] == "lowercase":
        return {v.lower() for v in variants}
    return {v[0].lower() + v[1:] for v in variants}


def assert_shape(rust_type: str, value, where: str):
    """`value` is what serde accepts for `rust_type` (as model.rs spells it).
    Strings must also be non-empty: nothing a template produces may be blank."""
    if m := re.fullmatch(r"Option<(.+)>", rust_type):
        if value is not None:
            assert_shape(m.group(1), value, where)
    elif m := re.fullmatch(r"Vec<(.+)>", rust_type):
        assert isinstance(value, list), f"{where}: a list expected, got {value!r}"
        for i, item in enumerate(value):
            assert_shape(m.group(1), item, f"{where}[{i}]")
    elif rust_type == "String":
        assert isinstance(value, str) and value, f"{where}: a non-empty string expected, got {value!r}"
    elif rust_type == "bool":
        assert isinstance(value, bool), f"{where}: true/false expected, got {value!r}"
    elif m := re.fullmatch(r"([ui])(8|16|32|64)", rust_type):
        bits = int(m.group(2))
        low, high = (0, 2**bits - 1) if m.group(1) == "u" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: an integer expected, got {value!r}"
        assert low <= value <= high, f"{where}: {value} out of {rust_type}"
    elif (values := enum_values(rust_type)) is not None:
        assert value in values, f"{where}: one of {sorted(values)} expected, got {value!r}"
    else:
        assert isinstance(value, dict), f"{where}: a {rust_type} object expected, got {value!r}"
        known = struct_fields(rust_type)
        assert set(value) <= set(known), f"{where}: fields {set(value) - set(known)} unknown to {rust_type}"
        missing = required_fields(rust_type) - set(value)
        assert not missing, f"{where}: {rust_type} needs {missing}"
        for name, item in value.items():
            assert_shape(known[name][0], item, f"{where}.{name}")


def engine_launch_types() -> set:
    """The launch types the engine's `network_from_input` accepts."""
    fn = re.search(r"pub fn network_from_input\(.*?\n\}", ECS_ADAPTER, re.S)
    assert fn, "network_from_input not found in shared/src/aws/ecs.rs"
    found = set(re.findall(r'"([A-Z0-9_]+)" => LaunchType::', fn.group(0)))
    assert found, "no launch types found in network_from_input"
    return found


def assert_deployment_request(request: dict):
    """The shape serde accepts (camelCase, unknown fields refused, required
    fields present, every value of its Rust type, `target.network`
    included), plus what the engine checks beyond types: exactly one of
    image/taskDefinition, a launch type it knows; and the system stack's
    alarm name prefix."""
    assert_shape("DeploymentRequest", request, "request")
    network = request["target"].get("network")
    if network is not None:
        assert network["subnets"], "target.network.subnets: ECS needs at least one subnet"
        assert network.get("launchType", "FARGATE") in engine_launch_types()
    prefix = SYSTEM["Parameters"]["AlarmNamePrefix"]["Default"]
    assert all(name.startswith(prefix) for name in request.get("alarms", {}).get("names", []))
    assert ("image" in request) != ("taskDefinition" in request)


def service_stack(network: bool = True, **parameters) -> Stack:
    """service.yaml with the test's parameters; `network` gives it the
    first task set's networking (NETWORK_PARAMS)."""
    params = {
        "ServiceName": "orders",
        "ClusterName": "prod",
        "ContainerName": "app",
        "NamespaceId": "ns-abc123",
        "NamespaceName": "svc.internal",
        "HostedZoneName": "canary.internal",
        "VpcId": "vpc-0123456789abcdef0",
        "StateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:canary-deployment",
        "EcrRepositoryName": "orders",
        "DeploymentStrategy": STRATEGY,
        "DeploymentAlarms": ALARMS,
        **(NETWORK_PARAMS if network else {}),
    }
    params.update(parameters)
    return Stack(
        SERVICE,
        parameters=params,
        refs={"PrivateZone": "Z0123456789ABCDEFGHIJ"},
        attrs={
            "Service.Name": "orders",
            "BlueSlot.Arn": BLUE_ARN,
            "GreenSlot.Arn": GREEN_ARN,
            "EcrTriggerRole.Arn": "arn:aws:iam::123456789012:role/orders-EcrTriggerRole",
        },
    )


def target_json(network: bool = True, **parameters) -> str:
    stack = service_stack(network, **parameters)
    assert stack.rule_failures() == []
    return stack.evaluate(SERVICE["Outputs"]["TargetJson"]["Value"])


def system_stack(network: bool = True) -> Stack:
    """template.yaml with an ECR trigger whose DeploymentTarget is the
    service stack's TargetJson output."""
    return Stack(
        SYSTEM,
        parameters={
            "ClusterName": "prod",
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "CloudMapNamespaceId": "ns-abc123",
            "EcrRepositoryName": "orders",
            "DeploymentTarget": target_json(network),
            "DeploymentStrategy": STRATEGY,
            "DeploymentAlarms": ALARMS,
        },
        refs={"DeploymentStateMachine": "arn:aws:states:us-west-2:123456789012:stateMachine:canary-deployment"},
        attrs={"EcrTriggerRole.Arn": "arn:aws:iam::123456789012:role/canary-EcrTriggerRole"},
    )


def request_from(stack: Stack, event: dict) -> dict:
    (target,) = stack.evaluate(stack.template["Resources"]["EcrPushRule"]["Properties"]["Targets"])
    return json.loads(transform_input(target["InputTransformer"], event))


# ------------------------------------------------------------------ outputs


def test_target_json_output_is_the_target():
    """Without subnets there is no `network` (an Option: left out)."""
    target = json.loads(target_json(network=False))
    assert target == EXPECTED_TARGET
    assert_deployment_request({"target": target, "image": "x"})


def test_target_json_output_carries_the_first_task_sets_network():
    target = json.loads(target_json())
    assert target == EXPECTED_TARGET_WITH_NETWORK
    assert_deployment_request({"target": target, "image": "x"})


@pytest.mark.parametrize(
    "parameters, network",
    [
        ({"Subnets": "subnet-0a1"}, {"subnets": ["subnet-0a1"], "securityGroups": [], "assignPublicIp": False, "launchType": "FARGATE"}),
        (
            {"Subnets": "subnet-0a1", "SecurityGroups": "sg-01,sg-02", "AssignPublicIp": "true"},
            {"subnets": ["subnet-0a1"], "securityGroups": ["sg-01", "sg-02"], "assignPublicIp": True, "launchType": "FARGATE"},
        ),
        ({"Subnets": "subnet-0a1", "LaunchType": "EC2"}, {"subnets": ["subnet-0a1"], "securityGroups": [], "assignPublicIp": False, "launchType": "EC2"}),
    ],
    ids=["subnet-only", "public-ip-two-groups", "ec2"],
)
def test_network_parameters_become_target_network(parameters, network):
    target = json.loads(target_json(network=False, **parameters))
    assert target["network"] == network
    assert_deployment_request({"target": target, "image": "x"})


@pytest.mark.parametrize(
    "parameters, refusal",
    [
        ({"SecurityGroups": "sg-01"}, "SecurityGroups needs Subnets"),
        ({"AssignPublicIp": "true"}, "AssignPublicIp needs Subnets"),
        ({"LaunchType": "EC2"}, "LaunchType needs Subnets"),
        ({"Subnets": "subnet-0a1", "LaunchType": "EC2", "AssignPublicIp": "true"}, "Fargate only"),
    ],
    ids=["groups-without-subnets", "public-ip-without-subnets", "launch-type-without-subnets", "public-ip-on-ec2"],
)
def test_rules_refuse_network_parameters_that_would_be_dropped_or_refused(parameters, refusal):
    failures = service_stack(network=False, **parameters).rule_failures()
    assert len(failures) == 1 and refusal in failures[0], failures


def test_launch_types_are_the_ones_the_engine_accepts():
    assert set(SERVICE["Parameters"]["LaunchType"]["AllowedValues"]) == engine_launch_types()
    assert SERVICE["Parameters"]["LaunchType"]["Default"] == "FARGATE"


@pytest.mark.parametrize("network", [True, False], ids=["with-network", "without-network"])
def test_outputs_are_exactly_the_target_fields(network):
    """One output per leaf of `target` (slots.blue.dnsName -> SlotsBlueDnsName,
    a list comma separated) plus TargetJson, and each holds the same value as
    TargetJson; the `network` outputs exist exactly when `network` does."""
    stack = service_stack(network)
    outputs = {
        name: stack.evaluate(o["Value"])
        for name, o in SERVICE["Outputs"].items()
        if "Condition" not in o or stack.condition(o["Condition"])
    }

    def leaves(node, prefix=""):
        for key, value in node.items():
            name = prefix + key[0].upper() + key[1:]
            if isinstance(value, dict):
                yield from leaves(value, name)
            elif isinstance(value, list):
                yield name, ",".join(value)
            elif isinstance(value, bool):
                yield name, json.dumps(value)
            else:
                yield name, value

    target = EXPECTED_TARGET_WITH_NETWORK if network else EXPECTED_TARGET
    assert json.loads(outputs["TargetJson"]) == target
    expected = dict(leaves(target))
    assert set(outputs) == set(expected) | {"TargetJson"}
    for name, value in expected.items():
        assert outputs[name] == value, name


def test_every_target_field_has_an_output():
    """The contract's `target` (and `target.network`) fields all appear in
    the expected targets these tests compare the outputs with."""
    assert set(EXPECTED_TARGET_WITH_NETWORK) == fields("Target")
    # capacityProviderStrategy (a list of objects) has no service.yaml
    # parameter: the stack says launchType, or the input gives a strategy.
    assert set(EXPECTED_NETWORK) | {"capacityProviderStrategy"} == fields("TaskSetNetwork")
    assert set(EXPECTED_TARGET) == required_fields("Target")


def test_existing_zone_is_used_when_given():
    stack = service_stack(ExistingHostedZoneId="ZEXISTING12345")
    assert json.loads(stack.evaluate(SERVICE["Outputs"]["TargetJson"]["Value"]))["hostedZoneId"] == "ZEXISTING12345"


# ------------------------------------------------------------ input transformer


def test_ecr_push_builds_a_deployment_request():
    request = request_from(system_stack(), ECR_EVENT)
    assert_deployment_request(request)
    assert request["image"] == "123456789012.dkr.ecr.us-west-2.amazonaws.com/orders:v1.4.2"
    assert request["target"] == EXPECTED_TARGET_WITH_NETWORK
    assert request["strategy"] == json.loads(STRATEGY)
    assert request["alarms"] == json.loads(ALARMS)

    produced = json.dumps(request, indent=2) + "\n"
    if os.environ.get("UPDATE_FIXTURES") == "1":
        REQUEST_FIXTURE.write_text(produced)
    assert REQUEST_FIXTURE.read_text() == produced, (
        "tests/fixtures/deployment-request-from-ecr.json is stale: rerun with UPDATE_FIXTURES=1"
    )


@pytest.mark.parametrize("network", [True, False], ids=["with-network", "without-network"])
def test_service_stack_trigger_builds_the_same_request(network):
    request = request_from(service_stack(network), ECR_EVENT)
    assert request == request_from(system_stack(network), ECR_EVENT)
    assert_deployment_request(request)
    assert ("network" in request["target"]) == network


def test_defaults_give_a_minimal_valid_request():
    stack = system_stack(network=False)
    del stack.parameters["DeploymentStrategy"], stack.parameters["DeploymentAlarms"]
    stack.__post_init__()
    request = request_from(stack, ECR_EVENT)
    assert_deployment_request(request)
    assert request["target"] == EXPECTED_TARGET
    assert request["strategy"] == {}
    assert request["alarms"] == {"names": []}


def test_image_follows_the_event():
    event = copy.deepcopy(ECR_EVENT)
    event.update(account="210987654321", region="eu-central-1")
    event["detail"].update({"repository-name": "team/orders", "image-tag": "release-7"})
    request = request_from(system_stack(), event)
    assert request["image"] == "210987654321.dkr.ecr.eu-central-1.amazonaws.com/team/orders:release-7"


def test_shape_check_catches_what_serde_refuses():
    """The checker itself: each of these is refused by serde (or the engine)."""
    good = {"target": EXPECTED_TARGET_WITH_NETWORK, "image": "x"}
    assert_deployment_request(good)
    bad_networks = [
        {**EXPECTED_NETWORK, "subnets": "subnet-0a1"},  # not a list
        {**EXPECTED_NETWORK, "assignPublicIp": "false"},  # a string, not a bool
        {**EXPECTED_NETWORK, "launchType": "SPOT"},  # unknown to the engine
        {**EXPECTED_NETWORK, "subnets": []},  # ECS needs one
        {**EXPECTED_NETWORK, "vpc": "vpc-1"},  # unknown field
        {k: v for k, v in EXPECTED_NETWORK.items() if k != "subnets"},  # required
    ]
    for network in bad_networks:
        with pytest.raises(AssertionError):
            assert_deployment_request({"target": {**EXPECTED_TARGET, "network": network}, "image": "x"})
    with pytest.raises(AssertionError):
        assert_deployment_request({"target": {**EXPECTED_TARGET, "cluster": ""}, "image": "x"})
    with pytest.raises(AssertionError):
        assert_deployment_request({"target": EXPECTED_TARGET, "image": "x", "alarms": {"insufficientData": "maybe"}})
    with pytest.raises(AssertionError):
        assert_deployment_request({"target": EXPECTED_TARGET, "image": "x", "strategy": {"steps": [10, 300]}})


# ----------------------------------------------------------------- patterns


@pytest.mark.parametrize("template", [SYSTEM, SERVICE], ids=["system", "service"])
def test_ecr_pattern_selects_tagged_successful_pushes(template):
    stack = system_stack() if template is SYSTEM else service_stack()
    stack.parameters["ImageTagPattern"] = "v*"
    pattern = stack.evaluate(template["Resources"]["EcrPushRule"]["Properties"]["EventPattern"])
    assert matches(pattern, ECR_EVENT)

    def variant(**detail):
        event = copy.deepcopy(ECR_EVENT)
        event["detail"].update(detail)
        return event

    assert not matches(pattern, variant(result="FAILURE"))
    assert not matches(pattern, variant(**{"action-type": "DELETE"}))
    assert not matches(pattern, variant(**{"repository-name": "payments"}))
    assert not matches(pattern, variant(**{"image-tag": "latest"}))
    untagged = copy.deepcopy(ECR_EVENT)
    del untagged["detail"]["image-tag"]
    assert not matches(pattern, untagged)


def test_alarm_pattern_selects_prefixed_alarms_going_to_alarm():
    stack = system_stack()
    events = SYSTEM["Resources"]["AlarmRollbackFunction"]["Properties"]["Events"]
    pattern = stack.evaluate(events["AlarmFired"]["Properties"]["Pattern"])
    event = {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-27T10:20:00Z",
        "region": "us-west-2",
        "resources": ["arn:aws:cloudwatch:us-west-2:123456789012:alarm:canary-orders-5xx"],
        "detail": {
            "alarmName": "canary-orders-5xx",
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-27T10:20:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-27T10:00:00.000+0000"},
            "configuration": {"metrics": []},
        },
    }
    assert matches(pattern, event)
    back_to_ok = copy.deepcopy(event)
    back_to_ok["detail"]["state"]["value"] = "OK"
    assert not matches(pattern, back_to_ok)
    other = copy.deepcopy(event)
    other["detail"]["alarmName"] = "billing-estimate"
    assert not matches(pattern, other)


# ------------------------------------------------------------ state machine


def test_definition_substitutions_cover_the_state_machine():
    asl = ROOT / "statemachine" / "deployment.asl.json"
    if not asl.is_file():
        pytest.skip("statemachine/deployment.asl.json does not exist yet")
    props = SYSTEM["Resources"]["DeploymentStateMachine"]["Properties"]
    used = set(re.findall(r"\$\{(\w+)\}", asl.read_text()))
    assert used == set(props["DefinitionSubstitutions"])
    local = ROOT / "statemachine" / "local-substitutions.json"
    if local.is_file():
        assert set(json.loads(local.read_text())) == used


# ---------------------------------------------------------------- IAM drift


def test_function_roles_grant_exactly_the_calls_the_engine_makes():
    """Every AWS call the engine makes (each goes through
    `classify("service:Action", ...)` in shared/src/aws/) is granted to some
    function role, and no function role grants a call the engine never makes.
    Per-function precision is reviewed by hand (infra/README.md's table)."""
    called = set()
    for source in (ROOT / "shared" / "src").rglob("*.rs"):
        called |= set(re.findall(r'classify\(\s*"([a-z0-9]+:[A-Za-z]+)"', source.read_text()))
    assert called, "no classify(\"service:Action\") calls found in shared/src"

    granted = set()
    resources = SYSTEM["Resources"]
    for name, resource in resources.items():
        if not (name.endswith("Role") and resource["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == "lambda.amazonaws.com"):
            continue
        for policy in resource["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                granted |= set(actions if isinstance(actions, list) else [actions])
    # Not API calls of the engine: the runtime's logging, passing roles, and
    # tagging on create (authorized as ecs:TagResource with RegisterTaskDefinition).
    not_calls = {"logs:CreateLogStream", "logs:PutLogEvents", "iam:PassRole", "ecs:TagResource"}
    assert called - granted == set(), "calls without a permission"
    assert granted - not_calls - called == set(), "permissions for calls the engine never makes"


# ------------------------------------------------ IAM per function (issue 12)

NOT_API_CALLS = {"logs:CreateLogStream", "logs:PutLogEvents", "iam:PassRole", "ecs:TagResource"}
# Granted although a clean run never makes the call: each is an error path.
ERROR_PATH_CALLS = {
    # An overlapping deployment created its task set first: this one deletes its own.
    "create-taskset": {"ecs:DeleteTaskSet"},
    # The fallback when the bake table cannot be read (issue 17): the scan
    # of the running executions' histories.
    "alarm-rollback": {"states:ListExecutions", "states:GetExecutionHistory"},
}
# Statements allowed on Resource "*", and why (least privilege otherwise).
STAR_RESOURCE_ACTIONS = {
    # No resource type exists for these (Service Authorization Reference).
    "ecs:DescribeTaskDefinition",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Composite alarms are returned only when the permission is not
    # narrowed to alarm ARNs (CloudWatch API Reference, DescribeAlarms).
    "cloudwatch:DescribeAlarms",
    "cloudwatch:DescribeAlarmHistory",
    # No resource type (Service Authorization Reference, AWS Cloud Map):
    # check-health's readiness waits for pending RegisterInstance operations.
    "servicediscovery:ListOperations",
}
TRANSFORMED = ROOT / "infra" / ".build" / "template.cfn.json"


def _policy_template() -> dict:
    """The transformed template infra/check.sh writes before running these
    tests; without it (or when it is older than template.yaml) the SAM one (the roles are plain AWS::IAM::Role
    resources, which the transform copies unchanged)."""
    source = ROOT / "infra" / "template.yaml"
    if TRANSFORMED.is_file() and TRANSFORMED.stat().st_mtime >= source.stat().st_mtime:
        return json.loads(TRANSFORMED.read_text())
    return SYSTEM


def _role_of_function() -> dict:
    """Function binary name -> its role's logical id (the same in the SAM
    and the transformed template)."""
    out = {}
    for resource in SYSTEM["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            role = resource["Properties"]["Role"]["Fn::GetAtt"]
            role = role[0] if isinstance(role, list) else role.split(".")[0]
            out[resource["Metadata"]["BuildProperties"]["Binary"]] = role
    return out


def _granted(template: dict, role: str) -> set:
    actions = set()
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            a = statement["Action"]
            actions |= set(a if isinstance(a, list) else [a])
    return actions


def _called_per_function() -> dict:
    """Function -> the AWS actions it called in the clean local runs of
    tests/reliability/calls.json (the local AWS call log marks each call of
    a function; gen_calls.py attributes it to the state that made it)."""
    asl = json.loads((ROOT / "statemachine" / "deployment.asl.json").read_text())
    binary = {
        "CreateTaskSetFunction": "create-taskset",
        "SetWeightFunction": "set-weight",
        "CheckHealthFunction": "check-health",
        "DeleteTaskSetFunction": "delete-taskset",
    }
    state_function = {}
    for name, state in asl["States"].items():
        fn = (state.get("Parameters") or {}).get("FunctionName", "")
        m = re.fullmatch(r"\$\{(\w+)\}", fn)
        if m:
            state_function[name] = binary[m.group(1)]
    state_function["alarm-rollback function"] = "alarm-rollback"
    prefix = {"stepfunctions": "states"}
    calls = json.loads((ROOT / "tests" / "reliability" / "calls.json").read_text())
    out: dict = {}
    for scenario in calls["scenarios"].values():
        for c in scenario["calls"]:
            assert c["by"] in state_function, f"call by unknown state {c['by']!r}"
            action = f"{prefix.get(c['service'], c['service'])}:{c['operation']}"
            out.setdefault(state_function[c["by"]], set()).add(action)
    return out


def test_each_function_role_allows_exactly_the_calls_that_function_makes():
    """Per function: every AWS action it called in a real local run is
    granted by its own role, and its role grants nothing else (but the
    named error-path calls). Fails when code and policy drift apart."""
    template = _policy_template()
    roles = _role_of_function()
    called = _called_per_function()
    assert set(called) == set(roles), (sorted(called), sorted(roles))
    for function, actions in called.items():
        granted = _granted(template, roles[function]) - NOT_API_CALLS
        assert actions - granted == set(), f"{function} calls without a permission"
        extra = granted - actions - ERROR_PATH_CALLS.get(function, set())
        assert extra == set(), f"{function}'s role grants calls it never makes"


def test_star_resources_are_only_where_aws_forces_them():
    for name, resource in SYSTEM["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Resource"] == "*":
                    actions = statement["Action"]
                    actions = set(actions if isinstance(actions, list) else [actions])
                    assert actions <= STAR_RESOURCE_ACTIONS, (name, statement.get("Sid"), actions - STAR_RESOURCE_ACTIONS)


@pytest.mark.parametrize("role", ["CreateTaskSetRole", "CheckHealthRole"])
def test_gate_roles_can_read_composite_alarms(role):
    """A permission narrowed to alarm ARNs hides composite alarms from
    DescribeAlarms and DescribeAlarmHistory: a composite gate alarm would
    end CreateFailed with TargetNotFound."""
    reads = {"cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"}
    for policy in SYSTEM["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = set(actions if isinstance(actions, list) else [actions])
            if actions & reads:
                assert statement["Resource"] == "*", statement
                reads -= actions
    assert reads == set(), f"{role} lacks {reads}"


def test_iam_patterns_have_no_permissive_default():
    """`*` as a default made states:StartExecution mean "run any task
    definition with any role in any service of the cluster"."""
    for name in ["ServiceNamePattern", "RecordNamePattern", "TaskDefinitionFamilyPattern", "TaskRoleNamePattern"]:
        spec = SYSTEM["Parameters"][name]
        assert "*" not in str(spec.get("Default", "")).replace("-*", ""), (name, spec.get("Default"))


def test_build_and_template_default_to_the_same_architecture():
    build = (ROOT / "infra" / "build.sh").read_text()
    m = re.search(r'ARCH="\$\{1:-(\w+)\}"', build)
    assert m, "infra/build.sh: default architecture not found"
    assert m.group(1) == SYSTEM["Parameters"]["Architecture"]["Default"]


def test_build_enables_the_rust_cargolambda_beta_before_sam_build():
    build = (ROOT / "infra" / "build.sh").read_text()
    flag = build.find("export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1")
    assert flag >= 0, "infra/build.sh must enable SAM's rust-cargolambda beta"
    assert flag < build.find("\nsam build"), "the flag must be set before sam build runs"
