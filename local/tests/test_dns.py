"""The local world's DNS: the authority (dns_server.py) answering from Route 53
and Cloud Map state, Route 53 propagation and Cloud Map registration delays,
and unbound caching by TTL in front of it. Every test asks a real server over
UDP (or TCP) on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest

from localaws import LocalAws
from localaws.dns_server import addresses, cnames, query

BLUE_IPS = [f"10.1.0.{i}" for i in range(1, 11)]
GREEN_IPS = [f"10.2.0.{i}" for i in range(1, 3)]


class DnsWorld:
    """ns-1: a private zone with the client-facing weighted CNAME `app.ns-1`;
    ns-2: a Cloud Map namespace with service-blue / service-green."""

    def __init__(self, aws: LocalAws, cname_ttl: int = 5, a_ttl: int = 10, health_check: bool = True) -> None:
        self.aws = aws
        self.sd = aws.client("servicediscovery")
        self.r53 = aws.client("route53")
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        op = self.sd.create_private_dns_namespace(Name="ns-2", Vpc=vpc)["OperationId"]
        self.namespace = self.sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
        self.services: dict[str, str] = {}
        for slot in ("blue", "green"):
            kwargs: dict[str, Any] = {}
            if health_check:
                kwargs["HealthCheckCustomConfig"] = {"FailureThreshold": 1}
            self.services[slot] = self.sd.create_service(
                Name=f"service-{slot}",
                NamespaceId=self.namespace,
                DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": a_ttl}]},
                **kwargs,
            )["Service"]["Id"]
        self.zone = self.r53.create_hosted_zone(
            Name="ns-1",
            CallerReference=f"dns-test-{time.time()}",
            HostedZoneConfig={"PrivateZone": True},
            VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
        )["HostedZone"]["Id"].split("/")[-1]
        self.cname_ttl = cname_ttl

    def register(self, slot: str, ips: list[str]) -> None:
        for ip in ips:
            self.sd.register_instance(ServiceId=self.services[slot], InstanceId=f"i-{ip}", Attributes={"AWS_INSTANCE_IPV4": ip})

    def set_health(self, slot: str, ips: list[str], status: str) -> None:
        for ip in ips:
            self.sd.update_instance_custom_health_status(ServiceId=self.services[slot], InstanceId=f"i-{ip}", Status=status)

    def set_weights(self, blue: int, green: int, name: str = "app.ns-1") -> dict[str, Any]:
        return self.r53.change_resource_record_sets(
            HostedZoneId=self.zone,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": name,
                            "Type": "CNAME",
                            "SetIdentifier": slot,
                            "Weight": weight,
                            "TTL": self.cname_ttl,
                            "ResourceRecords": [{"Value": f"service-{slot}.ns-2"}],
                        },
                    }
                    for slot, weight in (("blue", blue), ("green", green))
                ]
            },
        )["ChangeInfo"]


def slot_of(response: Any) -> str | None:
    targets = cnames(response)
    return targets[0].split(".")[0].removeprefix("service-") if targets else None


def shares(server: tuple[str, int], n: int, name: str = "app.ns-1") -> Counter[str | None]:
    return Counter(slot_of(query(name, server)) for _ in range(n))


@pytest.fixture()
def world(aws: LocalAws) -> DnsWorld:
    w = DnsWorld(aws)
    w.register("blue", BLUE_IPS[:2])
    w.register("green", GREEN_IPS)
    return w


def test_endpoints_name_the_authority_and_the_resolver(aws: LocalAws) -> None:
    dns_doc = aws.endpoints["dns"]
    assert aws.dns_authority() == ("127.0.0.1", int(dns_doc["authority"].rsplit(":", 1)[1]))
    assert aws.resolver()[0] == "127.0.0.1" and aws.resolver() != aws.dns_authority()
    assert dns_doc["resolverPid"] in aws.endpoints["pids"]
    assert aws.endpoints["functionEnv"]["LOCALAWS_DNS_RESOLVER"] == dns_doc["resolver"]
    # Outside every local zone the authority refuses; the resolver keeps working after.
    assert query("example.com", aws.dns_authority()).rcode() == dns.rcode.REFUSED
    assert query("ns-1-does-not-exist.example", aws.resolver()).rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)


def test_weighted_split_follows_the_weights(aws: LocalAws, world: DnsWorld) -> None:
    world.set_weights(90, 10)
    n = 1500
    seen = shares(aws.dns_authority(), n)
    assert set(seen) == {"blue", "green"}
    # Binomial sd at p=0.1, n=1500: 0.8 points; +-3 points is ~4 sd.
    # (Query speed is not asserted here: a shared 2-core machine makes timed
    # unit tests flaky; benchmarks print speed figures instead.)
    assert abs(seen["green"] / n - 0.10) < 0.03, seen


def test_all_zero_group_is_an_equal_split_and_weight_zero_is_never_chosen(aws: LocalAws, world: DnsWorld) -> None:
    world.set_weights(0, 0)
    seen = shares(aws.dns_authority(), 600)
    assert abs(seen["green"] / 600 - 0.5) < 0.08, seen
    world.set_weights(100, 0)
    assert shares(aws.dns_authority(), 300) == Counter({"blue": 300})
    world.set_weights(0, 1)
    assert shares(aws.dns_authority(), 300) == Counter({"green": 300})


def test_cname_is_chased_into_cloud_map_in_one_answer_with_each_ttl(aws: LocalAws, world: DnsWorld) -> None:
    world.set_weights(100, 0)
    for tcp in (False, True):
        r = query("App.NS-1", aws.dns_authority(), tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert [(rr.name.to_text(), rr.rdtype, rr.ttl) for rr in r.answer] == [
            ("App.NS-1.", dns.rdatatype.CNAME, 5),
            ("service-blue.ns-2.", dns.rdatatype.A, 10),
        ]
        assert sorted(addresses(r)) == sorted(BLUE_IPS[:2])


def test_plain_records_apex_nodata_and_nxdomain(aws: LocalAws, world: DnsWorld) -> None:
    world.r53.change_resource_record_sets(
        HostedZoneId=world.zone,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": "plain.ns-1", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.7"}]}}]},
    )
    auth = aws.dns_authority()
    r = query("plain.ns-1", auth)
    assert addresses(r) == ["192.0.2.7"] and r.answer[0].ttl == 60
    nodata = query("plain.ns-1", auth, "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    nx = query("missing.ns-1", auth)
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].rdtype == dns.rdatatype.SOA
    assert query("ns-1", auth, "SOA").answer[0].rdtype == dns.rdatatype.SOA
    assert query("ns-1", auth, "NS").answer[0].rdtype == dns.rdatatype.NS
    assert query("ns-2", auth, "SOA").answer[0].rdtype == dns.rdatatype.SOA


def test_multivalue_answers_healthy_first_at_most_eight(aws: LocalAws, world: DnsWorld) -> None:
    auth = aws.dns_authority()
    world.register("blue", BLUE_IPS[2:])  # 10 instances, all HEALTHY
    seen: set[str] = set()
    for _ in range(30):
        got = addresses(query("service-blue.ns-2", auth))
        assert len(got) == 8 and set(got) <= set(BLUE_IPS)
        seen |= set(got)
    assert seen == set(BLUE_IPS), "a random 8 of the 10 each time"
    world.set_health("blue", BLUE_IPS[3:], "UNHEALTHY")
    for _ in range(10):
        assert sorted(addresses(query("service-blue.ns-2", auth))) == sorted(BLUE_IPS[:3])
    world.set_health("blue", BLUE_IPS[:3], "UNHEALTHY")  # none healthy: up to 8 unhealthy ones
    got = addresses(query("service-blue.ns-2", auth))
    assert len(got) == 8 and set(got) <= set(BLUE_IPS)


def test_a_service_without_health_check_answers_every_instance(aws: LocalAws) -> None:
    w = DnsWorld(aws, health_check=False)
    w.register("blue", BLUE_IPS[:3])
    # Without a health check configuration Cloud Map reports UNKNOWN and DNS returns all records.
    w.set_health("blue", BLUE_IPS[:3], "UNHEALTHY")
    assert sorted(addresses(query("service-blue.ns-2", aws.dns_authority()))) == sorted(BLUE_IPS[:3])


def test_a_service_without_instances_is_nxdomain(aws: LocalAws) -> None:
    w = DnsWorld(aws)
    auth = aws.dns_authority()
    assert query("service-green.ns-2", auth).rcode() == dns.rcode.NXDOMAIN
    w.register("green", GREEN_IPS[:1])
    assert addresses(query("service-green.ns-2", auth)) == GREEN_IPS[:1]
    w.sd.deregister_instance(ServiceId=w.services["green"], InstanceId=f"i-{GREEN_IPS[0]}")
    r = query("service-green.ns-2", auth)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].ttl == 15  # the namespace's negative TTL
    # Through the CNAME: the chain ends in NXDOMAIN.
    w.set_weights(0, 100)
    r = query("app.ns-1", auth)
    assert r.rcode() == dns.rcode.NXDOMAIN and cnames(r) == ["service-green.ns-2"]


def test_route53_propagation_get_change_pending_until_dns_changes(aws: LocalAws, world: DnsWorld) -> None:
    auth = aws.dns_authority()
    assert world.set_weights(100, 0)["Status"] == "INSYNC"  # default: visible at once
    aws.route53_propagation(1.0, spread=0.5)
    started = time.time()
    info = world.set_weights(0, 100)
    assert info["Status"] == "PENDING"
    pending_answers = 0
    deadline = time.time() + 5
    while time.time() < deadline:
        slot = slot_of(query("app.ns-1", auth))
        status = world.r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"]
        if status == "INSYNC":
            break
        # The DNS answer was read before GetChange said PENDING: still the old weights.
        assert slot == "blue"
        pending_answers += 1
        time.sleep(0.05)
    took = time.time() - started
    assert status == "INSYNC" and 1.0 <= took < 2.5 and pending_answers > 5
    assert shares(auth, 50) == Counter({"green": 50})
    change = aws.route53_changes()[-1]
    assert change["changeId"] == info["Id"].rsplit("/", 1)[-1]
    assert 1.0 <= change["visibleAt"] - change["submittedAt"] <= 1.5
    with pytest.raises(world.r53.exceptions.ClientError) as err:
        world.r53.get_change(Id="CNOSUCHCHANGE")
    assert err.value.response["Error"]["Code"] == "NoSuchChange"


def test_a_conditional_batch_has_a_change_id_get_change_knows(aws: LocalAws, world: DnsWorld) -> None:
    """DELETE + CREATE in one batch (the engine's compare-and-swap weight
    write, here also changing the TTL) goes through the propagation model
    like an UPSERT: its change id is GetChange's, and DNS follows it."""
    world.set_weights(100, 0)

    def rr(slot: str, weight: int, ttl: int) -> dict[str, Any]:
        return {"Name": "app.ns-1", "Type": "CNAME", "SetIdentifier": slot, "Weight": weight, "TTL": ttl,
                "ResourceRecords": [{"Value": f"service-{slot}.ns-2"}]}

    changes = [{"Action": "DELETE", "ResourceRecordSet": rr("blue", 100, world.cname_ttl)},
               {"Action": "DELETE", "ResourceRecordSet": rr("green", 0, world.cname_ttl)},
               {"Action": "CREATE", "ResourceRecordSet": rr("blue", 0, 1)},
               {"Action": "CREATE", "ResourceRecordSet": rr("green", 100, 1)}]
    info = world.r53.change_resource_record_sets(HostedZoneId=world.zone, ChangeBatch={"Changes": changes})["ChangeInfo"]
    assert world.r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    assert aws.route53_changes()[-1]["changeId"] == info["Id"].rsplit("/", 1)[-1]
    assert shares(aws.dns_authority(), 10) == Counter({"green": 10})


def test_route53_changes_to_one_zone_become_visible_in_order(aws: LocalAws, world: DnsWorld) -> None:
    aws.route53_propagation(0.3, spread=1.0)
    world.set_weights(50, 50)
    world.set_weights(0, 100)
    changes = aws.route53_changes()[-2:]
    assert changes[1]["visibleAt"] >= changes[0]["visibleAt"]


def test_cloud_map_registration_reaches_dns_after_the_delay(aws: LocalAws) -> None:
    w = DnsWorld(aws)
    auth = aws.dns_authority()
    aws.cloudmap_dns_delay(0.8)
    started = time.time()
    op = w.sd.register_instance(ServiceId=w.services["green"], InstanceId="i-new", Attributes={"AWS_INSTANCE_IPV4": "10.9.0.1"})["OperationId"]
    # The API knows the instance at once; DNS does not yet.
    assert [i["Id"] for i in w.sd.list_instances(ServiceId=w.services["green"])["Instances"]] == ["i-new"]
    assert w.sd.get_operation(OperationId=op)["Operation"]["Status"] == "PENDING"
    assert query("service-green.ns-2", auth).rcode() == dns.rcode.NXDOMAIN
    while time.time() - started < 3 and not addresses(query("service-green.ns-2", auth)):
        time.sleep(0.05)
    assert 0.8 <= time.time() - started < 1.5
    assert addresses(query("service-green.ns-2", auth)) == ["10.9.0.1"]
    assert w.sd.get_operation(OperationId=op)["Operation"]["Status"] == "SUCCESS"
    # Deregistration: still answered until the delay has passed.
    started = time.time()
    w.sd.deregister_instance(ServiceId=w.services["green"], InstanceId="i-new")
    assert addresses(query("service-green.ns-2", auth)) == ["10.9.0.1"]
    while time.time() - started < 3 and query("service-green.ns-2", auth).rcode() != dns.rcode.NXDOMAIN:
        time.sleep(0.05)
    assert 0.8 <= time.time() - started < 1.5


def test_resolver_caches_an_answer_until_its_ttl_expires(aws: LocalAws) -> None:
    w = DnsWorld(aws, cname_ttl=2, a_ttl=2)
    w.register("blue", BLUE_IPS[:1])
    w.register("green", GREEN_IPS[:1])
    w.set_weights(100, 0)
    res, auth = aws.resolver(), aws.dns_authority()
    assert addresses(query("app.ns-1", res)) == BLUE_IPS[:1]  # fills the cache
    cached_at = time.time()
    w.set_weights(0, 100)
    assert addresses(query("app.ns-1", auth)) == GREEN_IPS[:1]  # the authority has switched
    cached = query("app.ns-1", res)
    assert addresses(cached) == BLUE_IPS[:1]  # the resolver has not
    assert all(rr.ttl <= 2 for rr in cached.answer)  # counting down from the record's TTL
    # unbound counts TTLs in whole seconds and still serves a record during
    # its last second (TTL 0): a TTL of 2 lasts between 1 and 3 seconds.
    while time.time() - cached_at < 5 and addresses(query("app.ns-1", res)) == BLUE_IPS[:1]:
        assert time.time() - cached_at <= 3.3, "cached past its TTL"
        time.sleep(0.05)
    switched = time.time() - cached_at
    assert 0.9 <= switched <= 3.3, switched
    assert addresses(query("app.ns-1", res)) == GREEN_IPS[:1]


def test_reset_empties_the_resolver_cache(aws: LocalAws) -> None:
    w = DnsWorld(aws, cname_ttl=60, a_ttl=60)
    w.register("blue", BLUE_IPS[:1])
    w.set_weights(100, 0)
    res = aws.resolver()
    assert addresses(query("app.ns-1", res)) == BLUE_IPS[:1]
    assert query("other.ns-1", res).rcode() == dns.rcode.NXDOMAIN  # cached as missing for 900 s
    aws.reset()
    w = DnsWorld(aws, cname_ttl=60, a_ttl=60)
    w.register("blue", BLUE_IPS[5:6])
    w.set_weights(100, 0)
    w.r53.change_resource_record_sets(
        HostedZoneId=w.zone,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": "other.ns-1", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]}}]},
    )
    assert addresses(query("app.ns-1", res)) == BLUE_IPS[5:6]
    assert addresses(query("other.ns-1", res)) == ["192.0.2.9"]


def test_reset_restores_the_dns_settings(aws: LocalAws) -> None:
    defaults = aws.dns()["settings"]  # 0 unless LOCALAWS_ROUTE53_PROPAGATION_S & co. are set
    aws.route53_propagation(30, spread=30)
    aws.cloudmap_dns_delay(10)
    assert aws.dns()["settings"]["route53Propagation"] == {"seconds": 30.0, "spread": 30.0}
    assert aws.dns()["settings"]["cloudMapDnsDelay"] == {"seconds": 10.0}
    aws.reset()
    assert aws.dns()["settings"] == defaults
    assert query("app.ns-1", aws.dns_authority()).rcode() == dns.rcode.REFUSED  # the zones are gone too


def test_without_unbound_the_local_aws_stops_and_names_the_package(tmp_path: Path) -> None:
    env = dict(os.environ, LOCALAWS_UNBOUND=str(tmp_path / "no-unbound-here"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    r = subprocess.run(
        [sys.executable, "-m", "localaws", "--run-dir", str(tmp_path), "up", "--lambda", "none", "--timeout", "30"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "install the Debian package 'unbound'" in r.stderr
    assert not (tmp_path / "endpoints.json").exists()


def test_several_resolvers_are_independent_caches(tmp_path: Path) -> None:
    with LocalAws(run_dir=tmp_path, lambda_mode="none", start_timeout=60, resolvers=2) as aws:
        first, second = aws.resolvers()
        assert first == aws.resolver() and first != second
        assert set(aws.endpoints["dns"]["resolverPids"]) <= set(aws.endpoints["pids"])
        w = DnsWorld(aws, cname_ttl=30, a_ttl=30)
        w.register("blue", BLUE_IPS[:1])
        w.register("green", GREEN_IPS[:1])
        w.set_weights(100, 0)
        assert addresses(query("app.ns-1", first)) == BLUE_IPS[:1]  # cached in the first only
        w.set_weights(0, 100)
        assert addresses(query("app.ns-1", first)) == BLUE_IPS[:1]
        assert addresses(query("app.ns-1", second)) == GREEN_IPS[:1]
        pids = aws.endpoints["dns"]["resolverPids"]
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "an unbound outlived the local AWS"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
