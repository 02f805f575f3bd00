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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from localaws import LocalAws

if TYPE_CHECKING:
    from localaws.clients import Clients

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE_NAME = "ecs-dns-canary"
# Repository URI an ECR push event would name.
IMAGE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/backend"


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
    # Repository of the service's images (``<registry>/<name>``); an image
    # per version is ``image("v2")``. Default: the one build() uses.
    image_repo: str = ""
    cname_ttl: int = 10
    cloudmap_ttl: int = 10

    def image(self, version: str) -> str:
        """The image reference of ``version`` (its tag): what a deployment
        names and what the tasks of that version answer in ``X-Version``."""
        repo = self.image_repo or f"{IMAGE_REPO.rsplit('/', 1)[0]}/{self.name}"
        return f"{repo}:{version}"

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

    def request(self, image: str, steps: Sequence[int] = (10, 50, 100), bake: int = 1, **strategy: Any) -> dict:
        """A deployment input (DeploymentRequest) with short waits for local runs."""
        s = {
            "steps": list(steps),
            "bakeSeconds": bake,
            "readyTimeoutSeconds": strategy.pop("ready_timeout", 30),
            "readyPollSeconds": strategy.pop("ready_poll", 1),
            "drainSeconds": strategy.pop("drain", 0),
            # Local bakes last seconds, shorter than the alarms' 10 s period
            # + evaluation: say so explicitly (the refusal has its own test).
            "allowShortBake": strategy.pop("allow_short_bake", True),
        }
        s.update(strategy)
        # The clients put their metrics every 10 s and the local CloudWatch
        # takes them at once: that is the metric delay the bake floor counts
        # (the engine's default, 60 s, is the CloudWatch agent's interval).
        alarms = {"names": list(self.alarms), "metricDelaySeconds": CLIENT_ALARM.metric_delay}
        return {"target": self.target(), "image": image, "strategy": s, "alarms": alarms}


@dataclasses.dataclass
class World:
    aws: LocalAws
    cluster: str
    vpc_id: str
    subnet_id: str
    sg_id: str
    namespace_id: str
    namespace_name: str
    zone_id: str
    state_machine_arn: str
    services: dict[str, Service]

    def c(self, service: str) -> Any:
        return self.aws.client(service)


def create_state_machine(aws: LocalAws) -> str:
    """Creates (or updates) the deployment state machine with the local substitutions."""
    sfn = aws.client("stepfunctions")
    definition = (REPO / "statemachine" / "deployment.asl.json").read_text()
    subs = json.loads((REPO / "statemachine" / "local-substitutions.json").read_text())
    for key, value in subs.items():
        definition = definition.replace("${" + key + "}", value)
    role = f"arn:aws:iam::{ACCOUNT}:role/ecs-dns-canary-states"
    create_repairs_state_machine(aws)
    for sm in sfn.list_state_machines()["stateMachines"]:
        if sm["name"] == STATE_MACHINE_NAME:
            sfn.update_state_machine(stateMachineArn=sm["stateMachineArn"], definition=definition)
            return sm["stateMachineArn"]
    return sfn.create_state_machine(
        name=STATE_MACHINE_NAME, definition=definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]


def create_repairs_state_machine(aws: LocalAws) -> str:
    """The repair function's record state machine (issue 15): the deployment
    state machine's name + "-repairs", statemachine/repairs.asl.json."""
    sfn = aws.client("stepfunctions")
    name = f"{STATE_MACHINE_NAME}-repairs"
    definition = (REPO / "statemachine" / "repairs.asl.json").read_text()
    for sm in sfn.list_state_machines()["stateMachines"]:
        if sm["name"] == name:
            return sm["stateMachineArn"]
    return sfn.create_state_machine(
        name=name, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/ecs-dns-canary-states", type="STANDARD"
    )["stateMachineArn"]


BAKE_TABLE = "ecs-dns-canary-bakes"


def create_bake_table(aws: LocalAws) -> str:
    """The bake registry (issue 17, shared/src/aws/bakes.rs) as
    infra/template.yaml declares it: partition key `alarmName`, sort key
    `execution`, TTL on `expiresAt`. Idempotent. The functions get its name
    as BAKE_TABLE (localaws.server.function_env)."""
    ddb = aws.client("dynamodb")
    try:
        ddb.create_table(
            TableName=BAKE_TABLE,
            AttributeDefinitions=[{"AttributeName": "alarmName", "AttributeType": "S"},
                                  {"AttributeName": "execution", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "alarmName", "KeyType": "HASH"},
                       {"AttributeName": "execution", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ddb.exceptions.ResourceInUseException:
        pass
    ttl = ddb.describe_time_to_live(TableName=BAKE_TABLE)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") != "ENABLED":
        ddb.update_time_to_live(TableName=BAKE_TABLE,
                                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
    return BAKE_TABLE


@dataclasses.dataclass(frozen=True)
class ClientAlarm:
    """The gate alarms on the clients' own metrics (``localaws.clients``
    puts them: namespace ``Clients``, dimension ``Service``, 10-s buckets,
    StorageResolution 1).

    ``<name>-5xx``: ``Errors5xx`` Sum over ``period`` ≥ ``threshold`` in
    ``datapoints`` of ``evaluation_periods`` periods, missing data not
    breaching. Why these values: a bad canary answering 5xx on a share *e*
    of its requests at a step of weight *w*, with clients sending *R*
    requests/s in total, serves about ``R · period · w · e`` 5xx a period
    (demo and tests: R ≈ 60-100, w = 0.1, e = 0.3 → 18-30), far above 5; a
    good version serves none (its error rate is 0), so it never trips. The
    weighted draw is lumpy (one per resolver cache and TTL, see
    local/README.md), so a 10 % canary may get no traffic in one period:
    one breaching period of one suffices, and the next period usually
    brings it. With Period 10 and 1 evaluation period, the engine's bake
    floor is 40 s: Period × (EvaluationPeriods + 1, the period a regression
    starts in) + its 10-s evaluation interval + ``metric_delay``, the
    clients' 10-s publish interval (``alarms.metricDelaySeconds``; the
    local CloudWatch ingests at once). The demo measured up to 38.4 s from
    a bad version's first request to ALARM (the floor without the delay and
    the alignment, 20 s, was late in 5 of 6 runs).

    ``<name>-latency``: ``Latency`` Average ≥ ``latency_ms`` with the same
    periods (a loopback request takes milliseconds, p99 under 300 ms on a
    loaded 2-core machine; this one is for tests that set its state by
    hand). Same periods, so both alarms need the same bake."""

    threshold: float = 5.0
    period: int = 10
    evaluation_periods: int = 1
    datapoints: int = 1
    latency_ms: float = 1000.0
    # The clients' MetricsPublisher interval (``ClientFleet(metrics_interval=)``).
    metric_delay: int = 10

    def bake_floor(self) -> int:
        """The shortest bake the engine accepts for this alarm without
        ``allowShortBake`` (issue 12 #12, issue 11 follow-up): Period ×
        (EvaluationPeriods + 1) + the evaluation interval (10 s for periods
        under a minute) + the metric delay. Also the longest a bad version
        may take to make the alarm fire (the demo checks it)."""
        return self.period * (self.evaluation_periods + 1) + (10 if self.period < 60 else 60) + self.metric_delay


CLIENT_ALARM = ClientAlarm()
CLIENT_NAMESPACE = "Clients"


def put_client_alarms(aws: LocalAws, service: str, alarm: ClientAlarm = CLIENT_ALARM) -> list[str]:
    """Creates (or updates) ``<service>-5xx`` and ``<service>-latency`` on the
    clients' metrics (see ``ClientAlarm``); returns their names."""
    cw = aws.client("cloudwatch")
    dims = [{"Name": "Service", "Value": service}]
    cw.put_metric_alarm(
        AlarmName=f"{service}-5xx",
        AlarmDescription="5xx the clients received from any version of the service",
        Namespace=CLIENT_NAMESPACE,
        MetricName="Errors5xx",
        Dimensions=dims,
        Statistic="Sum",
        Period=alarm.period,
        EvaluationPeriods=alarm.evaluation_periods,
        DatapointsToAlarm=alarm.datapoints,
        Threshold=alarm.threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    cw.put_metric_alarm(
        AlarmName=f"{service}-latency",
        AlarmDescription="mean latency the clients waited",
        Namespace=CLIENT_NAMESPACE,
        MetricName="Latency",
        Dimensions=dims,
        Statistic="Average",
        Period=alarm.period,
        EvaluationPeriods=alarm.evaluation_periods,
        DatapointsToAlarm=alarm.datapoints,
        Threshold=alarm.latency_ms,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    return [f"{service}-5xx", f"{service}-latency"]


def build(aws: LocalAws, services: Sequence[str] = ("backend",), replicas: int = 2, ttl: int = 10, cloudmap_ttl: int = 10,
          alarm: ClientAlarm | None = None) -> World:
    """Builds the world through ``aws`` (a localaws.LocalAws: its clients are
    marked as the harness's, so injected faults never hit them); each name in
    ``services`` becomes one deployable service.

    ``ttl``: the weighted CNAMEs' TTL; ``cloudmap_ttl``: the slots' A record
    TTL (Cloud Map DnsConfig). ``alarm``: how the ``<name>-5xx`` gate alarm
    reads the clients' ``Errors5xx`` (``CLIENT_ALARM`` by default). Both
    gate alarms watch the metrics the clients put (``localaws.clients``,
    namespace ``Clients``); with alarm evaluation off (the local AWS's
    default) they change state only through SetAlarmState, as before."""
    alarm = alarm or CLIENT_ALARM
    ec2 = aws.client("ec2")
    sd = aws.client("servicediscovery")
    ecs = aws.client("ecs")
    r53 = aws.client("route53")

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
                DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": cloudmap_ttl}]},
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
        put_client_alarms(aws, name, alarm)
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
            image_repo=f"{IMAGE_REPO.rsplit('/', 1)[0]}/{name}",
            cname_ttl=ttl,
            cloudmap_ttl=cloudmap_ttl,
        )

    # The seed is deployed before anyone uses it: with task start time and
    # ECS read lag on, wait (bounded) until each initial task set is visible
    # and its tasks are registered in Cloud Map, as a real seed would be.
    import time as _time

    deadline = _time.monotonic() + 60
    for svc in out.values():
        sid = svc.blue_arn.rsplit("/", 1)[-1]
        while _time.monotonic() < deadline:
            s = ecs.describe_services(cluster=svc.cluster, services=[svc.name])["services"][0]
            if s.get("taskSets") and len(sd.list_instances(ServiceId=sid)["Instances"]) >= replicas:
                break
            _time.sleep(0.1)
        else:
            raise TimeoutError(f"{svc.name}: the seed's task set did not start within 60 s")
    create_bake_table(aws)
    return World(
        aws=aws,
        cluster=cluster,
        vpc_id=vpc_id,
        subnet_id=subnet_id,
        sg_id=sg_id,
        namespace_id=namespace_id,
        namespace_name=namespace_name,
        zone_id=zone_id,
        state_machine_arn=create_state_machine(aws),
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


def task_definitions(world: World, family: str | None = None) -> list[str]:
    """Every registered task definition ARN (of ``family`` when given), sorted."""
    ecs = world.c("ecs")
    kwargs = {"familyPrefix": family} if family else {}
    arns: list[str] = []
    for page in ecs.get_paginator("list_task_definitions").paginate(**kwargs):
        arns += page["taskDefinitionArns"]
    return sorted(arns)


def primary(world: World, svc: Service) -> dict:
    """The service's PRIMARY task set (an AssertionError naming the task
    sets when there is none: every caller needs one)."""
    sets = task_sets(world, svc)
    found = [t for t in sets if t["status"] == "PRIMARY"]
    assert found, f"{svc.name} has no PRIMARY task set: {[(t.get('externalId'), t['status']) for t in sets]}"
    return found[0]


def snapshot(world: World, svc: Service) -> dict:
    """What a deployment may change, in a form that compares with ``==``:
    task sets (id, status, slot, task definition, scale), both weighted
    records, the task definitions of the service's family and the Cloud Map
    instances of both slots."""
    r53 = world.c("route53")
    rrs = r53.list_resource_record_sets(HostedZoneId=svc.zone_id)["ResourceRecordSets"]
    records = sorted(
        (r["SetIdentifier"], r["Weight"], r.get("TTL"), tuple(v["Value"] for v in r.get("ResourceRecords", [])))
        for r in rrs
        if r.get("SetIdentifier") and r["Name"].rstrip(".") == svc.record_name
    )
    return {
        "taskSets": sorted(
            (t["id"], t["status"], slot_of(svc, t), t["taskDefinition"], t.get("externalId"), t["scale"]["value"])
            for t in task_sets(world, svc)
        ),
        "records": records,
        "taskDefinitions": task_definitions(world, svc.name),
        "instances": {
            slot: sorted((i["Id"], tuple(sorted(i["Attributes"].items()))) for i in instances(world, svc, slot))
            for slot in ("blue", "green")
        },
    }


# ------------------------------------------------------------------ executions


def start(world: World, request: dict | str, name: str) -> str:
    """Starts one deployment (an execution named ``name``, the deployment id)
    and returns its ARN. ``request`` is the execution input (a dict, or raw
    text for malformed-input tests)."""
    sfn = world.c("stepfunctions")
    body = request if isinstance(request, str) else json.dumps(request)
    return sfn.start_execution(stateMachineArn=world.state_machine_arn, name=name, input=body)["executionArn"]


def describe(world: World, arn: str) -> dict:
    return world.c("stepfunctions").describe_execution(executionArn=arn)


def wait_end(world: World, arn: str, timeout: float = 120.0, poll: float = 0.2) -> dict:
    """Waits (bounded) until the execution leaves RUNNING; returns DescribeExecution."""
    import time

    sfn = world.c("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        if time.monotonic() > deadline:
            states = entered(history(world, arn))
            raise TimeoutError(f"{arn} still RUNNING after {timeout:.0f} s; states so far: {states}")
        time.sleep(poll)


def history(world: World, arn: str) -> list[dict]:
    """The execution's whole history, oldest first."""
    sfn = world.c("stepfunctions")
    events: list[dict] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events += page["events"]
    events.sort(key=lambda e: e["id"])
    return events


def entered(events: list[dict]) -> list[str]:
    """Names of every state entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in events if e.get("stateEnteredEventDetails")]


_READINESS = "Check new task set readiness"


def story(events: list[dict]) -> list[str]:
    """The states entered without Choice states and with the readiness loop
    folded to one "Check new task set readiness" (its length depends on
    timing): the sequence a test can compare exactly."""
    out: list[str] = []
    for e in events:
        det = e.get("stateEnteredEventDetails")
        if not det or e["type"] == "ChoiceStateEntered" or det["name"] == "Wait for new task set":
            continue
        if det["name"] == "Remember first shift":  # bookkeeping Pass of step 1 (issue 13)
            continue
        if det["name"].startswith("Announce "):  # a deployment event (issue 16); see deployment_events()
            continue
        if det["name"] == _READINESS and out and out[-1] == _READINESS:
            continue
        out.append(det["name"])
    return out


def canary_story(steps_done: int, ending: str = "success", steps_total: int | None = None) -> list[str]:
    """The expected ``story`` of a deployment with a live slot.
    ``ending``: "success" (all ``steps_done`` steps, promote, delete old),
    "alarm" (an alarm rolled back during the bake of step ``steps_done``) or
    "gate" (the end-of-bake gate of step ``steps_done`` failed)."""
    head = ["Create task set in idle slot", _READINESS, "Start canary"]
    step = ["Prepare next step", "Shift traffic", "Bake", "Check alarms"]
    rollback = ["Alarm fired", "Roll back traffic", "Drain new task set", "Delete new task set", "Deployment failed"]
    if ending == "success":
        return head + step * steps_done + ["Promote new task set", "Drain old task set", "Delete old task set",
                                           "Deployment complete"]
    if ending == "alarm":
        return head + step * (steps_done - 1) + step[:3] + rollback
    if ending == "gate":
        return head + step * steps_done + rollback
    raise ValueError(ending)


def bakes(events: list[dict]) -> list[dict]:
    """One entry per Bake state visit: ``enteredAt``, ``submitted`` (the
    callback task is waiting), ``end`` (TaskTimedOut = bake passed,
    TaskFailed = ended early, e.g. by alarm-rollback; None while baking),
    ``error``, ``cause``, ``endedAt``."""
    out: list[dict] = []
    current: dict | None = None
    for e in events:
        det = e.get("stateEnteredEventDetails")
        if det is not None:
            current = None
            if det["name"] == "Bake":
                current = {"enteredAt": e["timestamp"], "submitted": False, "end": None, "error": None,
                           "cause": None, "endedAt": None}
                out.append(current)
            continue
        if current is None:
            continue
        t = e["type"]
        if t == "TaskSubmitted":
            current["submitted"] = True
        elif t in ("TaskTimedOut", "TaskFailed", "TaskSucceeded") and current["end"] is None:
            d = e.get("taskTimedOutEventDetails") or e.get("taskFailedEventDetails") or {}
            current.update(end=t, error=d.get("error"), cause=d.get("cause"), endedAt=e["timestamp"])
        elif t == "TaskStateExited":
            current = None
    return out


def wait_baking(world: World, arn: str, step: int, timeout: float = 90.0, poll: float = 0.1) -> list[dict]:
    """Waits (bounded) until the execution is waiting in the Bake of canary
    step ``step`` (1-based: its callback task was submitted and has not
    ended); returns the history at that moment. Fails if the execution ends
    or passes that bake first. An execution that does not exist yet (started
    by another process) is waited for."""
    import time

    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    while True:
        try:
            events = history(world, arn)
        except ClientError as e:
            # Started by another process (the CLI) that may not have called
            # StartExecution yet.
            if e.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            events = []
        b = bakes(events)
        if len(b) >= step:
            visit = b[step - 1]
            if visit["end"] is not None or len(b) > step:
                raise AssertionError(f"the bake of step {step} ended before the test acted: {visit}")
            if visit["submitted"]:
                return events
        if any(e["type"] in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")
               for e in events):
            raise AssertionError(f"{arn} ended before baking step {step}: {entered(events)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} not baking step {step} after {timeout:.0f} s: {entered(events)}")
        time.sleep(poll)


def stop_running(world: World, cause: str = "stopped by the test") -> list[str]:
    """Stops every RUNNING execution of the state machine; returns their ARNs."""
    sfn = world.c("stepfunctions")
    stopped = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=world.state_machine_arn,
                                                                statusFilter="RUNNING"):
        for ex in page["executions"]:
            sfn.stop_execution(executionArn=ex["executionArn"], error="TestCleanup", cause=cause)
            stopped.append(ex["executionArn"])
    return stopped


# ------------------------------------------------------------------ Route 53 change log


def weight_changes(changes: list[dict], svc: Service, caller: str | None = "function") -> list[dict[str, int]]:
    """From ``aws.route53_changes()``: the weights of ``svc``'s record after
    each change made by ``caller`` (None: anyone), e.g.
    ``[{"blue": 90, "green": 10}, ...]``."""
    out = []
    for c in changes:
        if caller is not None and c["caller"] != caller:
            continue
        recs = _records_of(c, svc.record_name)
        if recs is None:
            continue
        out.append({r["setIdentifier"]: r["weight"] for r in recs if r.get("setIdentifier")})
    return out


def _records_of(change: dict, record_name: str) -> list[dict] | None:
    for name, recs in (change.get("records") or {}).items():
        if name.rstrip(".") == record_name:
            return recs
    return None


# ------------------------------------------------------------------ clients


class ClientFleet:
    """Client tasks calling ``svc``'s record through the world's resolvers,
    as ``localaws.clients`` plays them: for each mode, ``per_mode`` clients
    spread round-robin over the resolvers ``aws.resolvers()`` (one
    ``Clients`` run per mode and resolver, each with its own JSONL log in
    ``log_dir``), each sending ``rate`` requests/s for at most ``duration``
    seconds. With ``metrics`` each run puts its counts to CloudWatch
    (``MetricsPublisher``, namespace ``Clients``, Service = ``svc.name``,
    every ``metrics_interval`` s), as each task of an application would.

    ``records()`` merges the logs (``client`` becomes ``<mode>/<resolver
    index>/<client>``, unique in the fleet), ``recent(since)`` the records in
    memory; ``stop()`` ends every run early and joins."""

    def __init__(self, aws: LocalAws, svc: Service, log_dir: str | pathlib.Path, modes: Sequence[str] = ("new-connection", "keep-alive"), per_mode: int = 4,
                 rate: float = 10.0, duration: float = 60.0, max_connection_age: float = 5.0,
                 metrics: bool = True, metrics_interval: float = 10.0, resolvers: list | None = None,
                 timeout: float = 2.0, seed: int | None = None):
        import pathlib as _p
        import random as _r

        from localaws.clients import Clients, ClientsConfig, MetricsPublisher

        self.log_dir = _p.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        resolvers = list(resolvers or aws.resolvers())
        port = aws.task_port()
        endpoint = aws.env()["AWS_ENDPOINT_URL"]
        rng = _r.Random(seed)
        self.runs: list[tuple[str, Clients]] = []  # (group, Clients)
        self.logs: dict[str, _p.Path] = {}
        for mode in modes:
            counts = [per_mode // len(resolvers) + (1 if i < per_mode % len(resolvers) else 0)
                      for i in range(len(resolvers))]
            for i, (resolver, n) in enumerate(zip(resolvers, counts)):
                if n == 0:
                    continue
                group = f"{'nc' if mode == 'new-connection' else 'ka'}{i}"
                cfg = ClientsConfig(
                    name=svc.record_name, resolver=tuple(resolver), port=port, clients=n, mode=mode, rate=rate,
                    duration=duration, max_requests=int(n * rate * duration * 1.5) + 100,
                    max_connection_age=max_connection_age, timeout=timeout,
                )
                log = self.log_dir / f"clients-{group}.jsonl"
                log.unlink(missing_ok=True)
                pub = MetricsPublisher(svc.name, endpoint, interval=metrics_interval) if metrics else None
                self.runs.append((group, Clients(cfg, log=log, metrics=pub, seed=rng.getrandbits(32))))
                self.logs[group] = log
        self.started_at: float | None = None

    def start(self) -> ClientFleet:
        import time as _t

        self.started_at = _t.time()
        for _, c in self.runs:
            c.start()
        return self

    @property
    def running(self) -> bool:
        return any(c.running for _, c in self.runs)

    def recent(self, since: float | None = None) -> list[dict]:
        out: list[dict] = []
        for _, c in self.runs:
            out += c.recent(since)
        return out

    def snapshot(self) -> dict:
        return {group: c.snapshot() for group, c in self.runs}

    def join(self) -> dict:
        return {group: c.join() for group, c in self.runs}

    def stop(self) -> dict:
        for _, c in self.runs:
            c._stop.set()  # noqa: SLF001 - ask all first, so they end together
        return {group: c.stop() for group, c in self.runs}

    def put_errors(self) -> list[str]:
        return [e for _, c in self.runs if c.metrics is not None for e in c.metrics.put_errors]

    def records(self) -> list[dict]:
        """Every request of the fleet's logs, by start time; ``client`` is
        made unique across runs."""
        from localaws import clientlog

        out: list[dict] = []
        for group, path in self.logs.items():
            if not path.exists():
                continue
            for r in clientlog.load(path):
                r["client"] = f"{r['mode']}/{group}/{r['client']}"
                out.append(r)
        out.sort(key=lambda r: r["t"])
        return out

    def write_log(self, path: str | pathlib.Path) -> None:
        """The merged log, one JSON line a request (what ``clientlog`` reads)."""
        import pathlib as _p

        with _p.Path(path).open("w", encoding="utf-8") as f:
            for r in self.records():
                f.write(json.dumps(r, separators=(",", ":")) + "\n")


def alarm_changes(aws: LocalAws, alarm: str, state: str = "ALARM") -> list[float]:
    """Epoch times at which ``alarm`` entered ``state``: when the local
    CloudWatch emitted the state change event (the transition's instant),
    from the harness's delivery log."""
    return sorted(d["emittedAt"] for d in aws.alarm_events()["deliveries"]
                  if d["alarmName"] == alarm and d["state"] == state)


def task_stops(aws: LocalAws, key: str = "stoppedAt") -> dict[str, float]:
    """task id → when it stopped (``stoppedAt``: its server had closed every
    connection; ``stopRequestedAt``: the API call that stopped it), for every
    task stopped since the last reset (``aws.stopped_tasks()``)."""
    return {t["task"]: t[key] for t in aws.stopped_tasks() if t.get(key)}
# ------------------------------------------------------------------ realism
# Issue 12 ("Done when"): the e2e and reliability suites run with the real
# AWS behaviours on, at small but non-zero values so they stay quick. Each
# value is a local AWS setting (local/README.md, "Realistic mode" and
# "Timing settings"); TEST_REALISM=0 in the environment turns them off.
REALISM = {
    # ECS Developer Guide, task lifecycle: PROVISIONING/PENDING before RUNNING (task set STABILIZING).
    "task_start_seconds": 0.6,
    # ECS API Reference: eventual consistency; a new task set is MISSING for a while.
    "read_lag_ms": 300,
    # Cloud Map API Reference, GetInstancesHealthStatus: UNKNOWN without a health check configuration.
    "unknown_health": True,
    # Route 53 API Reference, GetChange: PENDING until every DNS server has the change.
    "route53_seconds": 0.3,
    "route53_spread": 0.4,
    # Cloud Map API Reference, RegisterInstance: asynchronous, DNS records later.
    "cloudmap_dns_seconds": 0.3,
    # CloudWatch service quotas: DescribeAlarms 9/s, DescribeAlarmHistory 20/s per account and Region.
    "describe_alarms_per_s": 9.0,
    "describe_alarm_history_per_s": 20.0,
}


def realism_on() -> bool:
    import os

    return os.environ.get("TEST_REALISM", "1") != "0"


def apply_realism(aws: LocalAws, timing: bool = True) -> dict:
    """Switches the realistic behaviours on (after a start or `aws.reset()`,
    which puts the fast defaults back). `timing=False`: no delays (a run
    whose call counts must be reproducible, e.g. the fault matrix's
    calls.json), but UNKNOWN health and the CloudWatch rate limit stay on."""
    r = REALISM
    on = realism_on()
    t = on and timing
    aws.ecs_realism(
        task_start_seconds=r["task_start_seconds"] if t else 0,
        read_lag_ms=r["read_lag_ms"] if t else 0,
        unknown_health=True if on else None,
    )
    aws.route53_propagation(r["route53_seconds"] if t else 0, spread=r["route53_spread"] if t else 0)
    aws.cloudmap_dns_delay(r["cloudmap_dns_seconds"] if t else 0)
    if on:
        # Only the functions' calls count against the limit (the harness's reads are not the engine's).
        aws.cloudwatch_rate_limit(
            enabled=True,
            describe_alarms=r["describe_alarms_per_s"],
            describe_alarm_history=r["describe_alarm_history_per_s"],
            caller="function",
        )
    return {"realism": on, "timing": t}
