"""Offline checks of infra/: the ECR push rules turn a real-shaped ECR event
into a DeploymentRequest the functions accept, the per-service outputs are
exactly the deployment input's `target`, and the event patterns select what
they should.

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


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def fields(struct: str) -> set:
    """The JSON field names of a struct in shared/src/model.rs."""
    body = re.search(r"pub struct " + struct + r" \{(.*?)\n\}", MODEL, re.S)
    assert body, f"struct {struct} not found in model.rs"
    return {camel(name) for name in re.findall(r"^\s*pub (\w+):", body.group(1), re.M)}


def assert_deployment_request(request: dict):
    """The shape serde accepts: camelCase, unknown fields refused, exactly
    one of image/taskDefinition."""
    assert set(request) <= fields("DeploymentRequest"), set(request) - fields("DeploymentRequest")
    target = request["target"]
    assert set(target) == fields("Target")
    assert set(target["slots"]) == fields("Slots")
    for slot in target["slots"].values():
        assert set(slot) == fields("SlotConfig")
        assert all(isinstance(v, str) and v for v in slot.values())
    assert all(isinstance(target[k], str) and target[k] for k in fields("Target") - {"slots"})
    assert set(request.get("strategy", {})) <= fields("StrategyInput")
    alarms = request.get("alarms", {})
    assert set(alarms) <= fields("AlarmGate")
    assert alarms.get("insufficientData", "pass") in {"pass", "fail"}
    assert all(name.startswith(SYSTEM["Parameters"]["AlarmNamePrefix"]["Default"]) for name in alarms.get("names", []))
    assert ("image" in request) != ("taskDefinition" in request)


def service_stack(**parameters) -> Stack:
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
        conditions={"CreateZone": params.get("ExistingHostedZoneId", "") == "", "HasEcrTrigger": True},
    )


def target_json() -> str:
    stack = service_stack()
    return stack.evaluate(SERVICE["Outputs"]["TargetJson"]["Value"])


def system_stack() -> Stack:
    return Stack(
        SYSTEM,
        parameters={
            "ClusterName": "prod",
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "CloudMapNamespaceId": "ns-abc123",
            "EcrRepositoryName": "orders",
            "DeploymentTarget": target_json(),
            "DeploymentStrategy": STRATEGY,
            "DeploymentAlarms": ALARMS,
        },
        refs={"DeploymentStateMachine": "arn:aws:states:us-west-2:123456789012:stateMachine:canary-deployment"},
        attrs={"EcrTriggerRole.Arn": "arn:aws:iam::123456789012:role/canary-EcrTriggerRole"},
        conditions={"HasEcrTrigger": True},
    )


def request_from(stack: Stack, event: dict) -> dict:
    (target,) = stack.evaluate(stack.template["Resources"]["EcrPushRule"]["Properties"]["Targets"])
    return json.loads(transform_input(target["InputTransformer"], event))


# ------------------------------------------------------------------ outputs


def test_target_json_output_is_the_target():
    target = json.loads(target_json())
    assert target == EXPECTED_TARGET
    assert_deployment_request({"target": target, "image": "x"})


def test_outputs_are_exactly_the_target_fields():
    """One output per leaf of `target` (slots.blue.dnsName -> SlotsBlueDnsName)
    plus TargetJson, and each holds the same value as TargetJson."""
    stack = service_stack()
    outputs = {name: stack.evaluate(o["Value"]) for name, o in SERVICE["Outputs"].items()}

    def leaves(node, prefix=""):
        for key, value in node.items():
            name = prefix + key[0].upper() + key[1:]
            if isinstance(value, dict):
                yield from leaves(value, name)
            else:
                yield name, value

    expected = dict(leaves(EXPECTED_TARGET))
    assert set(outputs) == set(expected) | {"TargetJson"}
    for name, value in expected.items():
        assert outputs[name] == value, name


def test_existing_zone_is_used_when_given():
    stack = service_stack(ExistingHostedZoneId="ZEXISTING12345")
    assert json.loads(stack.evaluate(SERVICE["Outputs"]["TargetJson"]["Value"]))["hostedZoneId"] == "ZEXISTING12345"


# ------------------------------------------------------------ input transformer


def test_ecr_push_builds_a_deployment_request():
    request = request_from(system_stack(), ECR_EVENT)
    assert_deployment_request(request)
    assert request["image"] == "123456789012.dkr.ecr.us-west-2.amazonaws.com/orders:v1.4.2"
    assert request["target"] == EXPECTED_TARGET
    assert request["strategy"] == json.loads(STRATEGY)
    assert request["alarms"] == json.loads(ALARMS)

    produced = json.dumps(request, indent=2) + "\n"
    if os.environ.get("UPDATE_FIXTURES") == "1":
        REQUEST_FIXTURE.write_text(produced)
    assert REQUEST_FIXTURE.read_text() == produced, (
        "tests/fixtures/deployment-request-from-ecr.json is stale: rerun with UPDATE_FIXTURES=1"
    )


def test_service_stack_trigger_builds_the_same_request():
    assert request_from(service_stack(), ECR_EVENT) == request_from(system_stack(), ECR_EVENT)


def test_defaults_give_a_minimal_valid_request():
    stack = system_stack()
    del stack.parameters["DeploymentStrategy"], stack.parameters["DeploymentAlarms"]
    stack.__post_init__()
    request = request_from(stack, ECR_EVENT)
    assert_deployment_request(request)
    assert request["strategy"] == {}
    assert request["alarms"] == {"names": []}


def test_image_follows_the_event():
    event = copy.deepcopy(ECR_EVENT)
    event.update(account="210987654321", region="eu-central-1")
    event["detail"].update({"repository-name": "team/orders", "image-tag": "release-7"})
    request = request_from(system_stack(), event)
    assert request["image"] == "210987654321.dkr.ecr.eu-central-1.amazonaws.com/team/orders:release-7"


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
    not_calls = {"logs:CreateLogStream", "logs:PutLogEvents", "iam:PassRole"}
    assert called - granted == set(), "calls without a permission"
    assert granted - not_calls - called == set(), "permissions for calls the engine never makes"
