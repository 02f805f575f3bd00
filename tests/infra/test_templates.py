"""Offline checks of infra/: the ECR push rules turn a real-shaped ECR event
into a DeploymentRequest the functions accept, the per-service outputs are
exactly the deployment input's `target` (with its optional `network` when
the stack is given subnets), and the event patterns select what they should.

"Accept" is judged against the engine's own types: contract/contract.json
holds their JSON Schemas (generated from shared/src/model.rs by
shared/tests/contract.rs), and every produced value is checked against
them, nested structs, lists and enums included.

The produced request is kept in tests/fixtures/deployment-request-from-ecr.json
so the Rust side can deserialize the very same JSON with the real type.
Regenerate it with UPDATE_FIXTURES=1.
"""

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cfn import Stack, load
from eventbridge import matches, transform_input

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SYSTEM = load(ROOT / "infra" / "template.yaml")
SERVICE = load(ROOT / "infra" / "service.yaml")
# The engine's types, error kinds and AWS actions per function, generated
# from the Rust code by shared/tests/contract.rs (stale: cargo test fails).
CONTRACT = json.loads((ROOT / "contract" / "contract.json").read_text())
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


def _schemas() -> dict:
    """The `$defs` of the engine's types as its functions read JSON."""
    return CONTRACT["schemas"]["deserialize"]


def _ref(schema: dict) -> dict:
    """The schema a `{"$ref": "#/$defs/Name"}` points at (or `schema`)."""
    if "$ref" in schema:
        return _schemas()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def fields(struct: str) -> set:
    """The JSON field names of a model struct (contract/contract.json)."""
    schema = _schemas()[struct]
    assert "properties" in schema, f"{struct} is not a struct in contract/contract.json"
    return set(schema["properties"])


def required_fields(struct: str) -> set:
    """Fields serde requires: neither an Option nor `#[serde(default)]`."""
    return set(_schemas()[struct].get("required", []))


def _matches(schema: dict, value) -> bool:
    try:
        assert_shape(schema, value, "")
    except AssertionError:
        return False
    return True


def assert_shape(schema: dict, value, where: str):
    """`value` is what serde accepts for the type `schema` describes (a JSON
    Schema of contract/contract.json; the subset schemars writes for the
    model types). Strings must also be non-empty: nothing a template
    produces may be blank."""
    schema = _ref(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            hits = [b for b in schema[key] if _matches(b, value)]
            assert hits, f"{where}: {value!r} matches none of {schema[key]}"
            assert key == "anyOf" or len(hits) == 1, f"{where}: {value!r} matches several of {schema[key]}"
            return
    if "const" in schema:
        assert value == schema["const"], f"{where}: {schema['const']!r} expected, got {value!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: one of {schema['enum']} expected, got {value!r}"
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    assert types, f"{where}: schema without a type: {schema}"
    if value is None:
        assert "null" in types, f"{where}: null is not allowed"
    elif isinstance(value, bool):
        assert "boolean" in types, f"{where}: true/false not allowed, {types} expected"
    elif isinstance(value, int):
        assert "integer" in types, f"{where}: an integer not allowed, {types} expected"
        if m := re.fullmatch(r"(u?)int(8|16|32|64)", schema.get("format", "")):
            bits = int(m.group(2))
            low, high = (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            assert low <= value <= high, f"{where}: {value} out of {schema['format']}"
    elif isinstance(value, str):
        assert "string" in types, f"{where}: a string not allowed, {types} expected"
        assert value, f"{where}: a non-empty string expected"
    elif isinstance(value, list):
        assert "array" in types, f"{where}: a list not allowed, {types} expected"
        for i, item in enumerate(value):
            assert_shape(schema["items"], item, f"{where}[{i}]")
    else:
        assert isinstance(value, dict) and "object" in types, f"{where}: an object expected, got {value!r}"
        known = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(known), f"{where}: fields {set(value) - set(known)} unknown"
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, f"{where}: {missing} required"
        for name, item in value.items():
            if name in known:
                assert_shape(known[name], item, f"{where}.{name}")


def engine_launch_types() -> set:
    """The launch types the engine accepts (`aws::ecs::LAUNCH_TYPES`)."""
    return set(CONTRACT["launchTypes"])


def assert_deployment_request(request: dict):
    """The shape serde accepts (camelCase, unknown fields refused, required
    fields present, every value of its Rust type, `target.network`
    included), plus what the engine checks beyond types: exactly one of
    image/taskDefinition, a launch type it knows; and the system stack's
    alarm name prefix."""
    assert_shape({"$ref": "#/$defs/DeploymentRequest"}, request, "request")
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


def test_the_cli_finds_the_repairs_state_machine_by_its_name():
    """cli/src/executions.rs reads a repair record under the deployment
    state machine's ARN + "-repairs" (canary_engine::aws::sfn)."""
    props = SYSTEM["Resources"]
    assert props["RepairsStateMachine"]["Properties"]["Name"]["Fn::Sub"] == (
        props["DeploymentStateMachine"]["Properties"]["Name"]["Fn::Sub"] + "-repairs"
    )


def test_repair_rule_selects_ended_executions_of_this_state_machine_only():
    stack = system_stack()
    events = SYSTEM["Resources"]["RepairFunction"]["Properties"]["Events"]
    pattern = stack.evaluate(events["ExecutionEnded"]["Properties"]["Pattern"])
    sm = stack.evaluate({"Ref": "DeploymentStateMachine"})
    event: dict[str, Any] = {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-02T10:20:00Z",
        "region": "us-west-2",
        "resources": [f"{sm}:orders-v2"],
        "detail": {
            "executionArn": f"{sm}:orders-v2",
            "stateMachineArn": sm,
            "name": "orders-v2",
            "status": "ABORTED",
            "startDate": 1796206800000,
            "stopDate": 1796206860000,
            "input": "{}",
            "output": None,
        },
    }
    for status in ["ABORTED", "TIMED_OUT", "FAILED"]:
        e = copy.deepcopy(event)
        e["detail"]["status"] = status
        assert matches(pattern, e), status
    for status in ["RUNNING", "SUCCEEDED"]:
        e = copy.deepcopy(event)
        e["detail"]["status"] = status
        assert not matches(pattern, e), status
    other = copy.deepcopy(event)
    other["detail"]["stateMachineArn"] = "arn:aws:states:us-west-2:123456789012:stateMachine:someone-else"
    assert not matches(pattern, other)


def test_alarm_pattern_selects_prefixed_alarms_going_to_alarm():
    stack = system_stack()
    events = SYSTEM["Resources"]["AlarmRollbackFunction"]["Properties"]["Events"]
    pattern = stack.evaluate(events["AlarmFired"]["Properties"]["Pattern"])
    event: dict[str, Any] = {
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
    props = SYSTEM["Resources"]["DeploymentStateMachine"]["Properties"]
    used = set(re.findall(r"\$\{(\w+)\}", asl.read_text()))
    assert used == set(props["DefinitionSubstitutions"])
    local = ROOT / "statemachine" / "local-substitutions.json"
    assert set(json.loads(local.read_text())) == used


# ---------------------------------------------------------------- IAM drift

# Not API calls of the engine: the runtime's logging, passing roles, and
# tagging on create (authorized as ecs:TagResource with RegisterTaskDefinition).
NOT_API_CALLS = {"logs:CreateLogStream", "logs:PutLogEvents", "iam:PassRole", "ecs:TagResource"}


def declared_actions(function: str) -> set:
    """The AWS actions `function` may call, as the engine declares them
    (`handlers::AWS_ACTIONS`, in contract/contract.json): a clean run's
    calls and the error-path ones."""
    f = CONTRACT["functions"][function]
    return set(f["awsActions"]) | set(f["errorPathAwsActions"])


def test_function_roles_grant_exactly_the_calls_the_engine_declares():
    """Per function: its role grants every action the engine declares for
    it (the contract test checks that list against the adapters' calls),
    and nothing else."""
    template = _policy_template()
    roles = _role_of_function()
    assert set(roles) == set(CONTRACT["functions"]), (sorted(roles), sorted(CONTRACT["functions"]))
    for function, role in roles.items():
        granted = _granted(template, role) - NOT_API_CALLS
        declared = declared_actions(function)
        assert declared - granted == set(), f"{function} calls without a permission"
        assert granted - declared == set(), f"{function}'s role grants calls it never makes"


# ------------------------------------------------ IAM per function (issue 12)

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
    state_function["repair function"] = "repair"
    prefix = {"stepfunctions": "states"}
    calls = json.loads((ROOT / "tests" / "reliability" / "calls.json").read_text())
    out: dict = {}
    for scenario in calls["scenarios"].values():
        for c in scenario["calls"]:
            assert c["by"] in state_function, f"call by unknown state {c['by']!r}"
            action = f"{prefix.get(c['service'], c['service'])}:{c['operation']}"
            out.setdefault(state_function[c["by"]], set()).add(action)
    return out


def test_each_function_makes_exactly_its_declared_calls():
    """Per function: the AWS actions it called in the clean local runs of
    tests/reliability/calls.json are the clean-run actions the engine
    declares for it; the error-path ones are declared apart (with a reason
    in the contract) and may be called too. Fails when code and
    declaration drift apart."""
    called = _called_per_function()
    assert set(called) == set(CONTRACT["functions"]), sorted(called)
    for function, actions in called.items():
        f = CONTRACT["functions"][function]
        assert actions - declared_actions(function) == set(), f"{function} makes undeclared calls"
        assert set(f["awsActions"]) - actions == set(), (
            f"{function}: declared as clean-run calls but not made in a clean run "
            "(an error-path call belongs in error_path_calls)"
        )


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


def test_engineer_policy_is_step_functions_on_our_executions_only():
    """Issue 15: abort, promote, approve and reject need only Step Functions
    calls on this state machine's executions (task tokens are not
    resources: SendTaskSuccess / SendTaskFailure alone take "*")."""
    doc = SYSTEM["Resources"]["EngineerControlPolicy"]["Properties"]["PolicyDocument"]
    granted = set()
    for statement in doc["Statement"]:
        actions = statement["Action"]
        actions = set(actions if isinstance(actions, list) else [actions])
        granted |= actions
        assert all(a.startswith("states:") for a in actions), statement
        if statement["Resource"] == "*":
            assert actions <= {"states:SendTaskSuccess", "states:SendTaskFailure"}, statement
        else:
            assert ":execution:${DeploymentStateMachine.Name}:*" in str(statement["Resource"]), statement
    assert granted == {
        "states:DescribeExecution",
        "states:GetExecutionHistory",
        "states:StopExecution",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }


# ------------------------------------------------------- deployment events


def events_stack(topic: str = "canary-events") -> Stack:
    return Stack(
        SYSTEM,
        parameters={"ClusterName": "prod", "HostedZoneId": "Z0123456789ABCDEFGHIJ",
                    "CloudMapNamespaceId": "ns-abc123", "DeploymentEventsTopicName": topic},
        refs={"DeploymentStateMachine": "arn:aws:states:us-west-2:123456789012:stateMachine:canary-deployment",
              "DeploymentEventsTopic": "arn:aws:sns:us-west-2:123456789012:canary-events"},
        attrs={"DeploymentEventsRule.Arn": "arn:aws:events:us-west-2:123456789012:rule/canary-events"},
    )


def test_the_state_machine_may_put_events_on_the_default_bus_only():
    statements = [
        s
        for p in SYSTEM["Resources"]["StateMachineRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if "events:PutEvents" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert len(statements) == 1
    (s,) = statements
    assert s["Action"] == ["events:PutEvents"]
    assert events_stack().evaluate(s["Resource"]) == "arn:aws:events:us-west-2:123456789012:event-bus/default"


def test_events_topic_and_rule_exist_only_with_a_topic_name():
    gated = ["DeploymentEventsTopic", "DeploymentEventsTopicPolicy", "DeploymentEventsRule"]
    for name in gated:
        assert SYSTEM["Resources"][name]["Condition"] == "HasEventsTopic", name
    assert SYSTEM["Outputs"]["DeploymentEventsTopicArn"]["Condition"] == "HasEventsTopic"
    assert events_stack().condition("HasEventsTopic")
    assert not events_stack("").condition("HasEventsTopic")
    assert not system_stack().condition("HasEventsTopic"), "no topic by default"


def test_events_rule_forwards_this_state_machines_events_to_the_topic():
    stack = events_stack()
    rule = SYSTEM["Resources"]["DeploymentEventsRule"]["Properties"]
    pattern = stack.evaluate(rule["EventPattern"])
    (target,) = stack.evaluate(rule["Targets"])
    assert target["Arn"] == "arn:aws:sns:us-west-2:123456789012:canary-events"
    sm = stack.ref("DeploymentStateMachine")
    # What the events:putEvents integration puts (tests/statemachine/test_events.py
    # captures the real ones): it appends the state machine and execution ARNs.
    event = {
        "source": "ecs-dns-canary",
        "detail-type": "Deployment Step Started",
        "resources": [sm, sm.replace(":stateMachine:", ":execution:") + ":orders-v2"],
        "detail": {"schemaVersion": "1", "service": "orders"},
    }
    assert matches(pattern, event)
    other = copy.deepcopy(event)
    other["resources"] = ["arn:aws:states:us-west-2:123456789012:stateMachine:someone-else"]
    assert not matches(pattern, other), "another stack's deployments"
    assert not matches(pattern, {**event, "source": "aws.states"})
    # The topic lets this rule (only) publish.
    policy = stack.evaluate(SYSTEM["Resources"]["DeploymentEventsTopicPolicy"]["Properties"]["PolicyDocument"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == stack.attr("DeploymentEventsRule", "Arn")
