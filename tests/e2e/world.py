"""A local world like the seed article's, built through the AWS APIs.

VPC, Cloud Map namespace ``ns-2`` with one service per slot, an ECS cluster
with an EXTERNAL-controller service whose blue task set serves version 1, a
private hosted zone ``ns-1`` with the two weighted CNAMEs (blue 100, green 0),
CloudWatch alarms, and the deployment state machine. Every call goes through
boto3 to the local AWS endpoint, exactly as it would against an account.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import uuid

import boto3

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE_NAME = "ecs-dns-canary"
# Repository URI an ECR push event would name.
IMAGE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/backend"


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@dataclasses.dataclass
class Service:
    """One deployable service in the world."""

    name: str
    cluster: str
    container: str
    zone_id: str
    record_name: str
    blue_arn: str
    green_arn: str
    blue_dns: str
    green_dns: str
    alarms: list[str]

    def target(self) -> dict:
        """The ``target`` of a deployment input, as the per-service template outputs it."""
        return {
            "cluster": self.cluster,
            "service": self.name,
            "container": self.container,
            "hostedZoneId": self.zone_id,
            "recordName": self.record_name,
            "slots": {
                "blue": {"setIdentifier": "blue", "registryArn": self.blue_arn, "dnsName": self.blue_dns},
                "green": {"setIdentifier": "green", "registryArn": self.green_arn, "dnsName": self.green_dns},
            },
        }

    def request(self, image: str, steps=(10, 50, 100), bake=1, **strategy) -> dict:
        """A deployment input (DeploymentRequest) with short waits for local runs."""
        s = {
            "steps": list(steps),
            "bakeSeconds": bake,
            "readyTimeoutSeconds": strategy.pop("ready_timeout", 30),
            "readyPollSeconds": strategy.pop("ready_poll", 1),
            "drainSeconds": strategy.pop("drain", 0),
        }
        s.update(strategy)
        return {"target": self.target(), "image": image, "strategy": s, "alarms": {"names": list(self.alarms)}}


@dataclasses.dataclass
class World:
    endpoint: str
    cluster: str
    vpc_id: str
    subnet_id: str
    sg_id: str
    namespace_id: str
    namespace_name: str
    zone_id: str
    state_machine_arn: str
    services: dict[str, Service]

    def c(self, service: str):
        return client(service, self.endpoint)


def create_state_machine(endpoint: str) -> str:
    """Creates (or updates) the deployment state machine with the local substitutions."""
    sfn = client("stepfunctions", endpoint)
    definition = (REPO / "statemachine" / "deployment.asl.json").read_text()
    subs = json.loads((REPO / "statemachine" / "local-substitutions.json").read_text())
    for key, value in subs.items():
        definition = definition.replace("${" + key + "}", value)
    role = f"arn:aws:iam::{ACCOUNT}:role/ecs-dns-canary-states"
    for sm in sfn.list_state_machines()["stateMachines"]:
        if sm["name"] == STATE_MACHINE_NAME:
            sfn.update_state_machine(stateMachineArn=sm["stateMachineArn"], definition=definition)
            return sm["stateMachineArn"]
    return sfn.create_state_machine(
        name=STATE_MACHINE_NAME, definition=definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]


def build(endpoint: str, services=("backend",), replicas: int = 2, ttl: int = 10) -> World:
    """Builds the world; each name in ``services`` becomes one deployable service."""
    ec2 = client("ec2", endpoint)
    sd = client("servicediscovery", endpoint)
    ecs = client("ecs", endpoint)
    r53 = client("route53", endpoint)

    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # ECS task sets in awsvpc mode need DNS hostnames (moto answers 500 otherwise).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    sg_id = ec2.create_security_group(GroupName=f"svc-{uuid.uuid4().hex[:6]}", Description="services", VpcId=vpc_id)[
        "GroupId"
    ]

    namespace_name = "ns-2"
    op = sd.create_private_dns_namespace(Name=namespace_name, Vpc=vpc_id)["OperationId"]
    namespace_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]

    zone_id = r53.create_hosted_zone(
        Name="ns-1",
        CallerReference=uuid.uuid4().hex,
        HostedZoneConfig={"PrivateZone": True, "Comment": "client-facing weighted CNAMEs"},
        VPC={"VPCRegion": REGION, "VPCId": vpc_id},
    )["HostedZone"]["Id"].split("/")[-1]

    cluster = "demo"
    ecs.create_cluster(clusterName=cluster)
    network = {"awsvpcConfiguration": {"subnets": [subnet_id], "securityGroups": [sg_id], "assignPublicIp": "DISABLED"}}

    out: dict[str, Service] = {}
    for name in services:
        slot_arns, slot_dns = {}, {}
        for slot in ("blue", "green"):
            svc = sd.create_service(
                Name=f"{name}-{slot}",
                NamespaceId=namespace_id,
                DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]},
                HealthCheckCustomConfig={"FailureThreshold": 1},
            )["Service"]
            slot_arns[slot] = svc["Arn"]
            slot_dns[slot] = f"{name}-{slot}.{namespace_name}"

        family = name
        td = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "app", "image": f"{IMAGE_REPO.rsplit('/', 1)[0]}/{name}:v1", "memory": 512, "essential": True,
                 "portMappings": [{"containerPort": 8080}]}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=cluster,
            serviceName=name,
            desiredCount=replicas,
            deploymentController={"type": "EXTERNAL"},
            networkConfiguration=network,
        )
        ts = ecs.create_task_set(
            cluster=cluster,
            service=name,
            taskDefinition=td,
            externalId=f"{name}-initial",
            networkConfiguration=network,
            launchType="FARGATE",
            serviceRegistries=[{"registryArn": slot_arns["blue"]}],
            scale={"unit": "PERCENT", "value": 100},
        )["taskSet"]
        ecs.update_service_primary_task_set(cluster=cluster, service=name, primaryTaskSet=ts["taskSetArn"])

        record_name = f"{name}.ns-1"
        r53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": record_name,
                            "Type": "CNAME",
                            "SetIdentifier": slot,
                            "Weight": 100 if slot == "blue" else 0,
                            "TTL": ttl,
                            "ResourceRecords": [{"Value": slot_dns[slot]}],
                        },
                    }
                    for slot in ("blue", "green")
                ]
            },
        )

        alarms = [f"{name}-5xx", f"{name}-latency"]
        cw = client("cloudwatch", endpoint)
        for alarm in alarms:
            cw.put_metric_alarm(
                AlarmName=alarm,
                MetricName="5xx" if alarm.endswith("5xx") else "p99",
                Namespace=f"App/{name}",
                Statistic="Sum",
                Period=10,
                EvaluationPeriods=1,
                Threshold=1.0,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        out[name] = Service(
            name=name,
            cluster=cluster,
            container="app",
            zone_id=zone_id,
            record_name=record_name,
            blue_arn=slot_arns["blue"],
            green_arn=slot_arns["green"],
            blue_dns=slot_dns["blue"],
            green_dns=slot_dns["green"],
            alarms=alarms,
        )

    return World(
        endpoint=endpoint,
        cluster=cluster,
        vpc_id=vpc_id,
        subnet_id=subnet_id,
        sg_id=sg_id,
        namespace_id=namespace_id,
        namespace_name=namespace_name,
        zone_id=zone_id,
        state_machine_arn=create_state_machine(endpoint),
        services=out,
    )


# ------------------------------------------------------------------ observations


def weights(world: World, svc: Service) -> dict[str, int]:
    """The two weighted records' weights, by set identifier."""
    r53 = world.c("route53")
    rrs = r53.list_resource_record_sets(HostedZoneId=svc.zone_id)["ResourceRecordSets"]
    return {
        r["SetIdentifier"]: r["Weight"]
        for r in rrs
        if r.get("SetIdentifier") and r["Name"].rstrip(".") == svc.record_name
    }


def task_sets(world: World, svc: Service) -> list[dict]:
    ecs = world.c("ecs")
    s = ecs.describe_services(cluster=svc.cluster, services=[svc.name])["services"][0]
    return s.get("taskSets", [])


def slot_of(svc: Service, ts: dict) -> str | None:
    regs = [r["registryArn"] for r in ts.get("serviceRegistries", [])]
    if svc.blue_arn in regs:
        return "blue"
    if svc.green_arn in regs:
        return "green"
    return None


def instances(world: World, svc: Service, slot: str) -> list[dict]:
    sd = world.c("servicediscovery")
    arn = svc.blue_arn if slot == "blue" else svc.green_arn
    return sd.list_instances(ServiceId=arn.rsplit("/", 1)[-1])["Instances"]
