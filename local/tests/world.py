"""A small local world for harness tests: VPC, Cloud Map namespace with
service-blue / service-green, an EXTERNAL ECS service, a private zone with
the two weighted CNAMEs, an alarm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localaws import LocalAws


@dataclass
class World:
    aws: LocalAws
    vpc: str
    subnet: str
    sg: str
    namespace_id: str
    blue: dict[str, Any]
    green: dict[str, Any]
    task_def: str
    zone_id: str
    cluster: str = "c1"
    service: str = "svc"
    record: str = "my-cname.ns-1"

    def create_task_set(
        self, slot: str, external_id: str, scale: float = 100.0, client_token: str | None = None
    ) -> dict[str, Any]:
        registry = self.blue if slot == "blue" else self.green
        extra = {"clientToken": client_token} if client_token else {}
        return self.aws.client("ecs").create_task_set(
            **extra,
            cluster=self.cluster,
            service=self.service,
            taskDefinition=self.task_def,
            externalId=external_id,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet], "securityGroups": [self.sg]}},
            serviceRegistries=[{"registryArn": registry["Arn"]}],
            scale={"unit": "PERCENT", "value": scale},
        )["taskSet"]

    def set_weights(self, blue: int, green: int, client: Any = None) -> None:
        r53 = client or self.aws.client("route53")
        r53.change_resource_record_sets(
            HostedZoneId=self.zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": self.record,
                            "Type": "CNAME",
                            "SetIdentifier": slot,
                            "Weight": weight,
                            "TTL": 5,
                            "ResourceRecords": [{"Value": f"service-{slot}.ns-2"}],
                        },
                    }
                    for slot, weight in (("blue", blue), ("green", green))
                ]
            },
        )


def build(aws: LocalAws, desired_count: int = 2) -> World:
    ec2 = aws.client("ec2")
    sd = aws.client("servicediscovery")
    ecs = aws.client("ecs")
    r53 = aws.client("route53")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    sd.create_private_dns_namespace(Name="ns-2", Vpc=vpc)
    ns = next(n["Id"] for n in sd.list_namespaces()["Namespaces"] if n["Name"] == "ns-2")
    services = {}
    for slot in ("blue", "green"):
        services[slot] = sd.create_service(
            Name=f"service-{slot}",
            NamespaceId=ns,
            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]},
            HealthCheckCustomConfig={"FailureThreshold": 1},
        )["Service"]
    ecs.create_cluster(clusterName="c1")
    td = ecs.register_task_definition(
        family="app",
        containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="c1", serviceName="svc", desiredCount=desired_count, deploymentController={"type": "EXTERNAL"})
    zone = r53.create_hosted_zone(
        Name="ns-1",
        CallerReference="harness-test",
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
    )["HostedZone"]["Id"].split("/")[-1]
    return World(aws, vpc, subnet, sg, ns, services["blue"], services["green"], td, zone)
