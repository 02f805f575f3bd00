"""The local world's DNS authority: a DNS server (UDP and TCP on 127.0.0.1, a
free port; dnspython for the wire format) answering from moto's own state as
Route 53 and Cloud Map answer inside a VPC.

- Route 53 hosted zones: plain and weighted record sets (a weighted group is
  chosen per query by weight: all weights 0 = equal chance, weight 0 while
  others are non-zero = never; Route 53 Developer Guide, "Weighted
  routing"), the record's TTL, and a CNAME followed into its target zone (a
  Cloud Map namespace, another private zone) in the same answer, as the VPC
  resolver (Route 53 Resolver) answers a stub. SOA/NS at the apex, NXDOMAIN
  and NODATA with the zone's SOA for negative caching (RFC 2308).
- Cloud Map DNS namespaces: an A query for `<service>.<namespace>` answers
  MULTIVALUE from the instances' `AWS_INSTANCE_IPV4`: up to 8 healthy ones
  (a random 8 when more), up to 8 unhealthy ones when none is healthy (Cloud
  Map API Reference, DnsConfig / RoutingPolicy MULTIVALUE). A service with no
  health check configuration answers with every instance (its instances'
  health is UNKNOWN; RegisterInstance: "If you didn't specify a health check
  configuration: returns all the records"). TTL: the service's A record TTL.
  A service with no instance has no record: NXDOMAIN.
- Route 53 propagation (`set_route53_propagation`): a change becomes visible
  in DNS `seconds + uniform(0, spread)` after ChangeResourceRecordSets; until
  then GetChange answers PENDING, then INSYNC (Route 53 API Reference,
  GetChange: "PENDING indicates that the changes in this request have not
  propagated to all Amazon Route 53 DNS servers"). Changes to one zone become
  visible in the order they were made.
- Cloud Map asynchronous registration (`set_cloudmap_dns_delay`):
  RegisterInstance / DeregisterInstance change the namespace's DNS answers
  that long after the call (Cloud Map API Reference, RegisterInstance: "This
  is an asynchronous operation"); GetOperation answers PENDING until then.

The answers come from a published, immutable *view* of moto's state (zones,
namespaces, instances), rebuilt under `state.MOTO_LOCK` only when something
changed (the hooks in `patches/dns_state.py` bump a generation counter),
when a pending change becomes visible, or at most every `MAX_VIEW_AGE`
seconds (a safety net for state changed by paths without a hook). A query
takes no lock in the common case: a few hundred microseconds."""

from __future__ import annotations

import logging
import os
import random
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

LOG = logging.getLogger("localaws.dns")

# Cloud Map MULTIVALUE answers at most 8 records (DnsConfig, RoutingPolicy).
MULTIVALUE_MAX = 8
# A CNAME chain longer than this is answered as far as it got (loop guard).
MAX_CNAME_HOPS = 8
# Negative-caching TTL of a Cloud Map namespace whose SOA TTL is not set
# (Cloud Map's `DnsProperties.SOA.TTL`, "The time to live (TTL) for purposes
# of negative caching"); our choice, short so that a slot that gains its
# first instance resolves soon.
DEFAULT_NAMESPACE_SOA_TTL = 15
# Rebuild the view at least this often even when no hook fired.
MAX_VIEW_AGE = 0.25
# How long a DNS thread waits for MOTO_LOCK to rebuild before answering from
# the previous view (moto requests hold it for milliseconds; a resolver
# waiting longer would retry or give up).
LOCK_WAIT = 0.5


# --------------------------------------------------------------------- settings


def _env_seconds(name: str) -> float:
    try:
        return max(0.0, float(os.environ.get(name, "0") or 0))
    except ValueError:
        LOG.warning("%s=%r is not a number of seconds: using 0", name, os.environ.get(name))
        return 0.0


@dataclass
class DnsSettings:
    """Delays of the local world's DNS (0 = fast tests). See local/README.md.
    The server's defaults (what `aws.reset()` returns to) come from
    LOCALAWS_ROUTE53_PROPAGATION_S, LOCALAWS_ROUTE53_SPREAD_S and
    LOCALAWS_CLOUDMAP_DNS_DELAY_S, 0 when unset: a whole suite can run
    with the realistic values."""

    route53_propagation_s: float = 0.0
    route53_spread_s: float = 0.0
    cloudmap_dns_delay_s: float = 0.0

    @classmethod
    def from_env(cls) -> DnsSettings:
        return cls(
            _env_seconds("LOCALAWS_ROUTE53_PROPAGATION_S"),
            _env_seconds("LOCALAWS_ROUTE53_SPREAD_S"),
            _env_seconds("LOCALAWS_CLOUDMAP_DNS_DELAY_S"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "route53Propagation": {"seconds": self.route53_propagation_s, "spread": self.route53_spread_s},
            "cloudMapDnsDelay": {"seconds": self.cloudmap_dns_delay_s},
        }


@dataclass
class PendingChange:
    """A Route 53 change not yet visible in DNS: until `visible_at` the zone
    answers from `before` (the zone's records just before the change)."""

    change_id: str
    zone_key: tuple[str, str]  # (account, zone id)
    submitted_at: float
    visible_at: float
    before: list[tuple[Any, ...]]


@dataclass
class Publisher:
    """Everything the DNS view is built from besides moto: settings, pending
    Route 53 changes and Cloud Map registrations, and the published view."""

    settings: DnsSettings = field(default_factory=DnsSettings.from_env)
    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0
    # change id -> (submitted_at, visible_at); kept after visibility for GetChange
    changes: dict[str, tuple[float, float]] = field(default_factory=dict)
    pending_changes: list[PendingChange] = field(default_factory=list)
    # (service id, instance id) -> visible_at: registered, not yet in DNS
    pending_register: dict[tuple[str, str], float] = field(default_factory=dict)
    # (service id, instance id) -> (visible_at, instance object): deregistered, still in DNS
    pending_deregister: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)
    # Cloud Map operation id -> visible_at
    operations: dict[str, float] = field(default_factory=dict)
    view: View | None = None
    rebuild_lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self) -> None:
        self.generation += 1

    def route53_delay(self) -> float:
        s = self.settings
        return max(0.0, s.route53_propagation_s + (random.uniform(0.0, s.route53_spread_s) if s.route53_spread_s > 0 else 0.0))

    def reset(self) -> None:
        with self.lock:
            self.settings = DnsSettings.from_env()
            self.changes.clear()
            self.pending_changes.clear()
            self.pending_register.clear()
            self.pending_deregister.clear()
            self.operations.clear()
            self.generation += 1


PUBLISHER = Publisher()


def set_route53_propagation(seconds: float, spread: float = 0.0) -> DnsSettings:
    if seconds < 0 or spread < 0:
        raise ValueError("seconds and spread must be >= 0")
    with PUBLISHER.lock:
        PUBLISHER.settings.route53_propagation_s = float(seconds)
        PUBLISHER.settings.route53_spread_s = float(spread)
        return PUBLISHER.settings


def set_cloudmap_dns_delay(seconds: float) -> DnsSettings:
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    with PUBLISHER.lock:
        PUBLISHER.settings.cloudmap_dns_delay_s = float(seconds)
        return PUBLISHER.settings


def change_status(change_id: str) -> str | None:
    """PENDING / INSYNC of a Route 53 change id (with or without `/change/`),
    None when unknown."""
    key = change_id.rsplit("/", 1)[-1]
    with PUBLISHER.lock:
        entry = PUBLISHER.changes.get(key)
    if entry is None:
        return None
    return "INSYNC" if time.time() >= entry[1] else "PENDING"


def change_times(change_id: str) -> tuple[float, float] | None:
    with PUBLISHER.lock:
        return PUBLISHER.changes.get(change_id.rsplit("/", 1)[-1])


# --------------------------------------------------------------------- the view


def _abs(name: str) -> dns.name.Name:
    return dns.name.from_text(name.lower().rstrip(".") + ".")


@dataclass
class RecordSet:
    """One Route 53 record set, ready to answer."""

    rrset: dns.rrset.RRset
    weight: int | None  # None: not weighted


@dataclass
class Zone:
    origin: dns.name.Name
    kind: str  # "route53" | "cloudmap"
    soa: dns.rrset.RRset
    ns: dns.rrset.RRset | None
    # Route 53: (owner, rdtype) -> record sets (several for a weighted group)
    records: dict[tuple[dns.name.Name, int], list[RecordSet]] = field(default_factory=dict)
    names: set[dns.name.Name] = field(default_factory=set)
    # Cloud Map: service owner name -> service
    services: dict[dns.name.Name, CloudMapService] = field(default_factory=dict)


@dataclass
class CloudMapService:
    name: dns.name.Name
    a_ttl: int | None  # None: the service has no A record
    healthy: list[Any]  # A rdata
    unhealthy: list[Any]


@dataclass
class View:
    zones: dict[dns.name.Name, Zone]
    generation: int
    built_at: float
    valid_until: float  # the next pending change's visibility time

    def find_zone(self, qname: dns.name.Name) -> Zone | None:
        """The most specific zone containing qname; a Cloud Map namespace
        wins over a same-named Route 53 zone (it *is* that zone on AWS)."""
        n = qname
        while True:
            zone = self.zones.get(n)
            if zone is not None:
                return zone
            if n == dns.name.root or len(n.labels) <= 1:
                return None
            n = n.parent()


def _soa_rrset(origin: dns.name.Name, ttl: int, minimum: int) -> dns.rrset.RRset:
    text = f"ns-localaws.{origin.to_text()} hostmaster.localaws.invalid. 1 7200 900 1209600 {minimum}"
    return dns.rrset.from_text(origin, ttl, "IN", "SOA", text)


def _route53_snapshot(zone: Any) -> list[tuple[Any, ...]]:
    """A plain copy of a moto zone's record sets (what a pending change keeps)."""
    out = []
    for rr in list(zone.rrsets):
        values = tuple(r if isinstance(r, str) else r.get("Value", "") for r in (rr.records or []))
        out.append((rr.name, rr.type, rr.ttl, rr.set_identifier, rr.weight, values, rr.alias_target))
    return out


_WARNED: set[tuple[Any, ...]] = set()


def _build_route53_zone(zone_name: str, snapshot: list[tuple[Any, ...]]) -> Zone:
    origin = _abs(zone_name)
    soa = None
    ns = None
    records: dict[tuple[dns.name.Name, int], list[RecordSet]] = {}
    names: set[dns.name.Name] = set()
    for name, rtype, ttl, set_id, weight, values, alias in snapshot:
        if not rtype or (not values and not alias):
            continue
        try:
            owner = _abs(name)
            rdtype = dns.rdatatype.from_text(str(rtype))
            ttl_i = int(ttl) if ttl is not None else 300
            if alias:
                continue  # alias records are not emulated (local/README.md, "What is not emulated")
            # Route 53 treats every name in a value as fully qualified
            # (`service-blue.ns-2` = `service-blue.ns-2.`).
            rrset = dns.rrset.from_text_list(
                owner, ttl_i, "IN", rdtype, list(values), origin=dns.name.root, relativize=False
            )
        except Exception as e:  # noqa: BLE001 - one odd record must not take the zone down
            key = (name, rtype, values)
            if key not in _WARNED:  # once, not at every rebuild
                _WARNED.add(key)
                LOG.warning("DNS: not answering record %s %s %s: %s", name, rtype, values, e)
            continue
        if rdtype == dns.rdatatype.SOA and owner == origin:
            soa = rrset
            continue
        if rdtype == dns.rdatatype.NS and owner == origin:
            ns = rrset
        w = None
        if set_id is not None and weight is not None:
            w = int(weight)
        records.setdefault((owner, rdtype), []).append(RecordSet(rrset, w))
        n = owner
        while n != origin and len(n.labels) > len(origin.labels):
            names.add(n)
            n = n.parent()
    if soa is None:
        soa = _soa_rrset(origin, 900, 86400)
    return Zone(origin=origin, kind="route53", soa=soa, ns=ns, records=records, names=names)


def _health_counts(svc: Any) -> bool:
    """True when the service has a health check (Route 53 or custom): then an
    instance's HEALTHY / UNHEALTHY decides; without one every instance counts
    (its health is UNKNOWN)."""
    return bool(getattr(svc, "health_check_config", None)) or bool(getattr(svc, "health_check_custom_config", None))


def _a_rdata(ip: str) -> Any:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, ip)


def build_view(now: float | None = None) -> View:
    """Reads moto's Route 53 and Cloud Map state (caller holds MOTO_LOCK)."""
    from moto.route53.models import route53_backends
    from moto.servicediscovery.models import servicediscovery_backends

    now = time.time() if now is None else now
    pub = PUBLISHER
    with pub.lock:
        generation = pub.generation
        # Pre-state of the earliest change of each zone still pending.
        pending_before: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        valid_until = float("inf")
        for ch in pub.pending_changes:
            if ch.visible_at > now:
                valid_until = min(valid_until, ch.visible_at)
                pending_before.setdefault(ch.zone_key, ch.before)
        pub.pending_changes = [c for c in pub.pending_changes if c.visible_at > now]
        not_yet = {k for k, t in pub.pending_register.items() if t > now}
        still = {k: inst for k, (t, inst) in pub.pending_deregister.items() if t > now}
        for t in list(pub.pending_register.values()) + [t for t, _ in pub.pending_deregister.values()]:
            if t > now:
                valid_until = min(valid_until, t)
        pub.pending_register = {k: t for k, t in pub.pending_register.items() if t > now}
        pub.pending_deregister = {k: v for k, v in pub.pending_deregister.items() if v[0] > now}

    zones: dict[dns.name.Name, Zone] = {}
    for account in list(route53_backends.keys()):
        for partition in list(route53_backends[account].keys()):
            backend = route53_backends[account][partition]
            for zone_id, zone in list(backend.zones.items()):
                snap = pending_before.get((account, zone_id))
                if snap is None:
                    snap = _route53_snapshot(zone)
                try:
                    z = _build_route53_zone(zone.name, snap)
                except Exception as e:  # noqa: BLE001
                    LOG.warning("DNS: skipping zone %s: %s", zone.name, e)
                    continue
                zones.setdefault(z.origin, z)

    for account in list(servicediscovery_backends.keys()):
        for region in list(servicediscovery_backends[account].keys()):
            sd_backend = servicediscovery_backends[account][region]
            ns_by_id: dict[str, Zone] = {}
            for ns in list(sd_backend.namespaces.values()):
                if ns.type not in ("DNS_PRIVATE", "DNS_PUBLIC"):
                    continue
                props = ns.dns_properties or {}
                soa_ttl = int((props.get("SOA") or {}).get("TTL", DEFAULT_NAMESPACE_SOA_TTL))
                origin = _abs(ns.name)
                z = Zone(origin=origin, kind="cloudmap", soa=_soa_rrset(origin, soa_ttl, soa_ttl), ns=None)
                ns_by_id[ns.id] = z
                zones[origin] = z
            for svc in list(sd_backend.services.values()):
                cz = ns_by_id.get(svc.namespace_id)
                if cz is None:
                    continue
                records = (svc.dns_config or {}).get("DnsRecords") or []
                a_ttl = next((int(r.get("TTL", 60)) for r in records if r.get("Type") == "A"), None)
                checked = _health_counts(svc)
                live = [i for i in list(svc.instances) if (svc.id, i.instance_id) not in not_yet]
                live_ids = {i.instance_id for i in live}
                live += [inst for (sid, iid), inst in still.items() if sid == svc.id and iid not in live_ids]
                healthy, unhealthy = [], []
                for inst in live:
                    ip = (inst.attributes or {}).get("AWS_INSTANCE_IPV4")
                    if not ip:
                        continue
                    try:
                        rd = _a_rdata(ip)
                    except Exception:  # noqa: BLE001 - not an IPv4 address
                        continue
                    status = getattr(inst, "health_status", "HEALTHY")
                    if not checked or status == "HEALTHY":
                        healthy.append(rd)
                    else:
                        unhealthy.append(rd)
                owner = _abs(f"{svc.name}.{cz.origin.to_text()}")
                cz.services[owner] = CloudMapService(owner, a_ttl, healthy, unhealthy)
    return View(zones=zones, generation=generation, built_at=now, valid_until=valid_until)


def current_view() -> View:
    """The published view, rebuilt first when stale."""
    from .state import MOTO_LOCK

    pub = PUBLISHER
    view = pub.view
    now = time.time()
    if view is not None and view.generation == pub.generation and now < view.valid_until and now - view.built_at < MAX_VIEW_AGE:
        return view
    with pub.rebuild_lock:
        view = pub.view
        now = time.time()
        if view is not None and view.generation == pub.generation and now < view.valid_until and now - view.built_at < MAX_VIEW_AGE:
            return view
        if not MOTO_LOCK.acquire(timeout=LOCK_WAIT):
            if view is not None:
                LOG.warning("DNS: moto busy for %.1f s; answering from the previous view", LOCK_WAIT)
                return view
            MOTO_LOCK.acquire()
        try:
            new = build_view()  # "now" taken under the lock: no change can slip in between
        finally:
            MOTO_LOCK.release()
        pub.view = new
        return new


# --------------------------------------------------------------------- answering


def _choose(sets: list[RecordSet]) -> RecordSet | None:
    """One record set of a group: weighted ones by weight (Route 53 Developer
    Guide, weighted routing: all 0 = equal chance; 0 among non-zero = never)."""
    if not sets:
        return None
    if len(sets) == 1:
        return sets[0]
    weights = [s.weight or 0 for s in sets]
    total = sum(weights)
    if total == 0:
        return random.choice(sets)
    return random.choices(sets, weights=weights, k=1)[0]


def _cloudmap_answer(svc: CloudMapService) -> list[Any]:
    """MULTIVALUE: up to 8 healthy; none healthy: up to 8 unhealthy."""
    pool = svc.healthy if svc.healthy else svc.unhealthy
    if len(pool) > MULTIVALUE_MAX:
        return random.sample(pool, MULTIVALUE_MAX)
    picked = list(pool)
    random.shuffle(picked)
    return picked


def resolve(view: View, qname: dns.name.Name, rdtype: int) -> tuple[dns.rcode.Rcode, list[dns.rrset.RRset], list[dns.rrset.RRset]]:
    """(rcode, answer, authority) for one question, CNAMEs chased across zones."""
    answer: list[dns.rrset.RRset] = []
    name = qname
    for hop in range(MAX_CNAME_HOPS + 1):
        zone = view.find_zone(name)
        if zone is None:
            # Outside every local zone: refuse the question; at the end of a
            # CNAME chain, answer what we have (the resolver goes on).
            return (dns.rcode.REFUSED if hop == 0 else dns.rcode.NOERROR), answer, []
        negative = [_negative_soa(zone)]
        if zone.kind == "cloudmap" and name != zone.origin:
            svc = zone.services.get(name)
            if svc is None or svc.a_ttl is None or not (svc.healthy or svc.unhealthy):
                # No record at that name (a service without instance has none).
                return dns.rcode.NXDOMAIN, answer, negative
            if rdtype not in (dns.rdatatype.A, dns.rdatatype.ANY):
                return dns.rcode.NOERROR, answer, negative
            answer.append(dns.rrset.from_rdata_list(name, svc.a_ttl, _cloudmap_answer(svc)))
            return dns.rcode.NOERROR, answer, []
        if name == zone.origin:
            if rdtype == dns.rdatatype.SOA:
                answer.append(zone.soa)
                return dns.rcode.NOERROR, answer, []
            if rdtype == dns.rdatatype.NS and zone.ns is not None:
                answer.append(zone.ns)
                return dns.rcode.NOERROR, answer, []
        own = zone.records.get((name, rdtype))
        if own:
            chosen = _choose(own)
            if chosen is not None:
                answer.append(chosen.rrset)
            return dns.rcode.NOERROR, answer, []
        cname = zone.records.get((name, dns.rdatatype.CNAME))
        if cname:
            chosen = _choose(cname)
            if chosen is None:
                return dns.rcode.NOERROR, answer, negative
            answer.append(chosen.rrset)
            name = chosen.rrset[0].target
            continue
        if name in zone.names or name == zone.origin:
            return dns.rcode.NOERROR, answer, negative  # NODATA
        return dns.rcode.NXDOMAIN, answer, negative
    return dns.rcode.NOERROR, answer, []


def _negative_soa(zone: Zone) -> dns.rrset.RRset:
    """The SOA for the authority section of a negative answer, its TTL the
    negative-caching TTL (RFC 2308: min(SOA TTL, SOA MINIMUM))."""
    soa = zone.soa
    ttl = min(soa.ttl, soa[0].minimum)
    if ttl == soa.ttl:
        return soa
    return dns.rrset.from_rdata_list(soa.name, ttl, list(soa))


STATS = {"queries": 0, "errors": 0}


def handle(wire: bytes, max_size: int = 65535) -> bytes | None:
    """One DNS message in, its answer out (None: not a query we can parse)."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - garbage on the port: no answer, as servers do
        STATS["errors"] += 1
        return None
    STATS["queries"] += 1
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    if query.opcode() != 0 or len(query.question) != 1:
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != 0 else dns.rcode.FORMERR)
        return response.to_wire()
    q = query.question[0]
    if q.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    try:
        view = current_view()
        rcode, answer, authority = resolve(view, q.name.canonicalize(), q.rdtype)
    except Exception:  # noqa: BLE001 - a bug answers SERVFAIL, never kills the server
        LOG.exception("DNS: failed to answer %s", q)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()
    response.set_rcode(rcode)
    # Owner names keep the case of the question (0x20-randomising resolvers check it).
    for rrset in answer:
        response.answer.append(_with_case(rrset, q.name))
    response.authority.extend(authority)
    if rcode == dns.rcode.REFUSED:
        response.flags &= ~dns.flags.AA
    limit = max_size
    if query.edns >= 0:
        limit = min(max_size, max(512, query.payload))
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


def _with_case(rrset: dns.rrset.RRset, qname: dns.name.Name) -> dns.rrset.RRset:
    if rrset.name == qname and rrset.name.to_text() != qname.to_text():
        return dns.rrset.from_rdata_list(qname, rrset.ttl, list(rrset))
    return rrset


# --------------------------------------------------------------------- servers


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10.0)
        for _ in range(1000):  # messages per connection, bounded
            try:
                head = _recv_exact(sock, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                body = _recv_exact(sock, length)
                if body is None:
                    return
            except OSError:
                return
            out = handle(body)
            if out is None:
                return
            try:
                sock.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class DnsServer:
    """UDP + TCP on one loopback port. `start()` returns the port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, udp_threads: int = 2) -> None:
        self.host = host
        self.requested_port = port
        self.udp_threads = udp_threads
        self.udp: socket.socket | None = None
        self.tcp: _TcpServer | None = None
        self.port = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> int:
        last: Exception | None = None
        for _ in range(20):  # a free TCP port whose UDP twin is free too
            tcp = None
            try:
                tcp = _TcpServer((self.host, self.requested_port), _TcpHandler)
                port = int(tcp.server_address[1])
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.bind((self.host, port))
            except OSError as e:
                last = e
                if tcp is not None:
                    tcp.server_close()
                if self.requested_port:
                    break
                continue
            self.tcp, self.udp, self.port = tcp, udp, port
            break
        else:
            raise RuntimeError(f"DNS server: no free UDP+TCP port on {self.host}: {last}")
        if self.udp is None or self.tcp is None:
            raise RuntimeError(f"DNS server: cannot bind {self.host}:{self.requested_port}: {last}")
        self.udp.settimeout(0.5)
        t = threading.Thread(target=self.tcp.serve_forever, kwargs={"poll_interval": 0.5}, name="dns-tcp", daemon=True)
        t.start()
        self._threads.append(t)
        for i in range(self.udp_threads):
            t = threading.Thread(target=self._udp_loop, name=f"dns-udp-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        LOG.info("DNS authority answers on %s:%d (UDP and TCP)", self.host, self.port)
        return self.port

    def _udp_loop(self) -> None:
        sock = self.udp
        assert sock is not None
        while not self._stop.is_set():
            try:
                wire, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            out = handle(wire, max_size=65535)
            if out is None:
                continue
            try:
                sock.sendto(out, addr)
            except OSError:
                continue

    def stop(self) -> None:
        self._stop.set()
        if self.tcp is not None:
            self.tcp.shutdown()
            self.tcp.server_close()
        if self.udp is not None:
            self.udp.close()


# --------------------------------------------------------------------- client helper


def parse_hostport(text: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(text, tuple):
        return text[0], int(text[1])
    host, _, port = text.rpartition(":")
    return host, int(port)


def query(name: str, server: str | tuple[str, int], rdtype: str = "A", tcp: bool = False, timeout: float = 2.0) -> dns.message.Message:
    """Asks `server` ("127.0.0.1:PORT" or (host, port)) one question, as a
    stub resolver does (RD set), and returns the whole response."""
    host, port = parse_hostport(server)
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, host, port=port, timeout=timeout)
    return dns.query.udp(q, host, port=port, timeout=timeout)


def addresses(response: dns.message.Message) -> list[str]:
    """The A / AAAA addresses of a response's answer section."""
    out: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            out.extend(r.address for r in rrset)
    return out


def cnames(response: dns.message.Message) -> list[str]:
    """The CNAME targets of a response's answer section, in order."""
    return [r.target.to_text(omit_final_dot=True) for rrset in response.answer if rrset.rdtype == dns.rdatatype.CNAME for r in rrset]
