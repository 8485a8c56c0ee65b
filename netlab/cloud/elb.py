"""ELB: load balancers in front of LoadBalancer Services (layer 4) and Ingress (layer 7,
`netlab.cloud.ingress`).

An ELB is a namespace `elb/<name>` on a VPC subnet, holding its private address (the VIP)
on `eth0`; an EIP may be bound to it (`eips: [{bind: elb/<name>}]`, or
`kubernetes.io/elb.autocreate: '{"type": "public"}'`). Its type decides what a backend sees:

- `shared` reaches backends from its own backend-side address, taken from 100.125.0.0/16
  as the service does: the backend sees that address (the VPC router routes it back to the
  ELB);
- `dedicated` keeps the client's address. A backend then answers the client, not the ELB,
  so the VPC fabric steers the answer back through the ELB, as the service's fabric does:
  the VPC router marks the ELB's connections to backends (conntrack mark, matched by the
  ELB's MAC address on the packets it sends) and sends every reply of such a connection to
  the ELB instead of the client (`dup` to the ELB, original dropped; bridged replies too,
  which the router sees through br_netfilter). The ELB undoes its DNAT and answers the
  client from its VIP.

Listeners: a LoadBalancer Service's ports become TCP/UDP listeners of the ELB its
annotations name (`kubernetes.io/elb.id`, `kubernetes.io/elb.class`: union = shared,
performance = dedicated); each forwards to a backend server group (pool) of every node's
nodeIP:nodePort, or, for a dedicated ELB in front of an eni cluster, straight to the pods'
podIP:targetPort (the service's passthrough; `passthrough` is the one place that decides).
The layer-4 datapath is IPVS where the kernel has it (`ipvsadm -R`, NAT mode, one virtual
server per listener), nftables otherwise (one table `netlab-elb`, rendered whole by
`ruleset` and replaced in one `nft -f` transaction: per listener, round robin over the
healthy members with `numgen inc`, or a source hash for SOURCE_IP); a shared ELB SNATs what
it sends to backends to its backend-side address in the same table. A listener without a
healthy member forwards nothing: the ELB's own stack refuses the connection.

Health checks: one process per lab (`netlab.apply.healthcheck`) probes every member of every
pool (TCP connect, HTTP GET, or UDP) every `delay` seconds from the ELB's namespace, and
after `max_retries` consecutive failures takes it out of rotation (re-rendering the table
or setting its IPVS weight to 0), after as many successes puts it back. The options come
from the Service's `kubernetes.io/elb.health-check-option` annotation (the service's
defaults: delay 5 s, timeout 10 s, 3 retries, the listener's protocol);
`kubernetes.io/elb.health-check-flag: "off"` disables them.

What the lab publishes, as the cloud controller does: the Service's
`status.loadBalancer.ingress` lists the ELB's private address and its EIPs; with
`kubernetes.io/elb.pass-through: "true"` each entry carries `ipMode: Proxy`, so kube-proxy
does not short-circuit in-cluster clients and their packets really go through the ELB.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from pydantic import Field

from netlab.cloud.base import CloudObject
from netlab.cloud.eip import EipPool
from netlab.cloud.vpc import attach_ops, no_icmp_ratelimit
from netlab.lab import ipam, naming
from netlab.lab.model import (Attachment, ClusterInfo, EipInfo, ElbInfo, HealthCheckInfo, Lab,
                              ListenerInfo, LoadBalancerIngressInfo, MemberInfo, PoolInfo, ServiceInfo)
from netlab.lab.services import selected, target_port
from netlab.plan.ops import (AddAddress, AddNetns, AddRoute, IpvsRestore, LoadModule, NftApply, Op, SetLink,
                             StartProcess, Sysctl)
from netlab.scenario.types import Address, Name, Strict

BACKEND_RANGE = IPv4Network("100.125.0.0/16")  # shared ELBs' backend-side addresses
TABLE = "netlab-elb"  # in the ELB (listeners) and in the VPC router (steering)
MARK_BASE = 0x4E4C00  # conntrack marks of dedicated ELBs' backend connections in the router
HEALTHCHECK = "healthcheck"

# Annotations the service reads (kubernetes.io/elb.*); any other is refused as a typo.
ELB_ID = "kubernetes.io/elb.id"
ELB_CLASS = "kubernetes.io/elb.class"
ELB_AUTOCREATE = "kubernetes.io/elb.autocreate"
ELB_PASS_THROUGH = "kubernetes.io/elb.pass-through"
ELB_HEALTH_FLAG = "kubernetes.io/elb.health-check-flag"
ELB_HEALTH_OPTION = "kubernetes.io/elb.health-check-option"
ELB_ALGORITHM = "kubernetes.io/elb.lb-algorithm"
ELB_PORT = "kubernetes.io/elb.port"  # Ingress: the listener port
KNOWN = (ELB_ID, ELB_CLASS, ELB_AUTOCREATE, ELB_PASS_THROUGH, ELB_HEALTH_FLAG, ELB_HEALTH_OPTION, ELB_ALGORITHM,
         ELB_PORT)
CLASSES = {"union": "shared", "performance": "dedicated"}
ALGORITHMS = ("ROUND_ROBIN", "SOURCE_IP")
HEALTH_DEFAULTS = {"delay": 5, "timeout": 10, "max_retries": 3}  # the service's defaults


class Elb(Strict):
    """A load balancer the scenario creates; LoadBalancer Services and Ingresses name it
    with `kubernetes.io/elb.id: <name>`."""

    name: Name
    type: Literal["shared", "dedicated"] = "shared"
    subnet: Name | None = Field(default=None, description="the subnet of its private address; default: the first")
    ip: Address | None = Field(default=None, description="its private address (VIP); default: the subnet's "
                                                         "last free address")


def passthrough(elb: ElbInfo, cluster: ClusterInfo) -> bool:
    """A dedicated ELB in front of an eni cluster sends straight to the pods (podIP:
    targetPort) instead of every node's nodePort: the service's passthrough, possible
    because eni pods hold VPC addresses. The one place that decides it."""
    return elb.type == "dedicated" and cluster.model == "eni"


def netns_of(lab_name: str, name: str) -> str:
    return naming.netns(lab_name, "elb", name)


def mac_of(netns: str) -> str:
    """A stable, locally administered MAC for an ELB's eth0 (the router matches it)."""
    h = naming.short_hash(netns, 6)
    return f"02:4e:4c:{h[0:2]}:{h[2:4]}:{h[4:6]}"


def pool_name(cluster: str, svc: ServiceInfo, port: int, protocol: str) -> str:
    return f"{cluster}/{svc.spec.namespace}/{svc.spec.name}:{port}/{protocol}"


class AnnotationError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def health_check(annotations: dict[str, str], protocol: str) -> HealthCheckInfo | None:
    """The health check a Service's annotations ask for (None: off), or AnnotationError."""
    flag = annotations.get(ELB_HEALTH_FLAG, "on")
    if flag not in ("on", "off"):
        raise AnnotationError(ELB_HEALTH_FLAG, f"'{flag}' is not valid; write \"on\" or \"off\"")
    if flag == "off":
        return None
    text = annotations.get(ELB_HEALTH_OPTION, "{}")
    try:
        option = json.loads(text)
    except ValueError:
        option = None
    if not isinstance(option, dict):
        raise AnnotationError(ELB_HEALTH_OPTION, f"{text!r} is not a JSON object such as "
                                                 '{"protocol":"TCP","delay":"5","timeout":"10","max_retries":"3"}')
    unknown = sorted(set(option) - {"protocol", "delay", "timeout", "max_retries", "path"})
    if unknown:
        raise AnnotationError(ELB_HEALTH_OPTION, f"unknown key {unknown[0]!r}; keys: protocol, delay, timeout, "
                                                 "max_retries, path")
    values: dict = {}
    for key, (low, high) in (("delay", (1, 50)), ("timeout", (1, 50)), ("max_retries", (1, 10))):
        raw = option.get(key, HEALTH_DEFAULTS[key])
        try:
            values[key] = int(raw)
        except (TypeError, ValueError):
            raise AnnotationError(ELB_HEALTH_OPTION, f"{key}: {raw!r} is not a whole number") from None
        if not low <= values[key] <= high:
            raise AnnotationError(ELB_HEALTH_OPTION, f"{key}: {values[key]} is outside {low}-{high}")
    proto = str(option.get("protocol", protocol)).upper()
    allowed = ("UDP",) if protocol == "UDP" else ("TCP", "HTTP")
    if proto not in allowed:
        raise AnnotationError(ELB_HEALTH_OPTION, f"protocol: {proto} cannot check a {protocol} listener; "
                                                 f"use {' or '.join(allowed)}")
    path = str(option.get("path", "/"))
    if not path.startswith("/"):
        raise AnnotationError(ELB_HEALTH_OPTION, f"path: {path!r} must start with /")
    return HealthCheckInfo(protocol=proto, path=path, **values)


def members(lab: Lab, elb: ElbInfo, cluster: ClusterInfo, svc: ServiceInfo, index: int) -> list[MemberInfo]:
    """The backend servers of one Service port behind `elb`."""
    port = svc.spec.ports[index]
    if passthrough(elb, cluster):
        out = []
        for pod in selected(svc, cluster.pods):
            tp = target_port(port, pod)
            if tp is not None:
                out.append(MemberInfo(address=pod.ip, port=tp, target=f"{cluster.name}/{pod.name}"))
        return out
    return [MemberInfo(address=n.eth0.ip, port=port.nodePort, target=f"{cluster.name}/{n.name}")
            for n in cluster.nodes]


class ElbObject(CloudObject):
    name = "elb"

    # -- resolve --------------------------------------------------------------------------
    def resolve(self, scenario, lab: Lab, ctx) -> None:
        taken = _taken_addresses(lab)
        overlap = _backend_range_overlap(lab)
        for i, spec in enumerate(scenario.elbs):
            path = ("elbs", i)
            if overlap and spec.type == "shared":
                raise ctx.error(path + ("type",), f"a shared ELB's backend-side range {BACKEND_RANGE} overlaps "
                                                  f"{overlap}; change that CIDR")
            lab.elbs.append(_new_elb(lab, spec.name, spec.type, spec.subnet, spec.ip, path, ctx, taken))
        for ci, cluster in enumerate(lab.clusters):
            for si, svc in enumerate(cluster.services):
                spath = ("clusters", ci, "services", si)
                try:
                    self._bind_service(scenario, lab, cluster, svc, spath, ctx, taken, overlap)
                except AnnotationError as e:
                    raise ctx.error(spath + ("annotations", e.key), str(e)) from None
        _bind_eips(scenario, lab, ctx)
        publish(lab)

    def _bind_service(self, scenario, lab: Lab, cluster: ClusterInfo, svc: ServiceInfo, path, ctx, taken,
                      overlap) -> None:
        notes = svc.spec.annotations
        unknown = sorted(k for k in notes if k.startswith("kubernetes.io/elb.") and k not in KNOWN)
        if unknown:
            raise AnnotationError(unknown[0], f"unknown ELB annotation; the lab reads: {', '.join(KNOWN)}")
        if svc.spec.type != "LoadBalancer":
            if ELB_ID in notes or ELB_AUTOCREATE in notes:
                raise AnnotationError(ELB_ID if ELB_ID in notes else ELB_AUTOCREATE,
                                      f"only a LoadBalancer Service gets an ELB (this one is {svc.spec.type})")
            return
        cls = notes.get(ELB_CLASS, "union")
        if cls not in CLASSES:
            raise AnnotationError(ELB_CLASS, f"'{cls}' is not valid; write union (shared ELB) or performance "
                                             "(dedicated ELB)")
        elb = self._elb_for(scenario, lab, cluster, svc, cls, path, ctx, taken, overlap)
        if elb is None:
            return  # no ELB named: the Service keeps spec.loadBalancerIP, as before the ELB existed
        if CLASSES[cls] != elb.type:
            raise AnnotationError(ELB_CLASS, f"ELB '{elb.name}' is {elb.type}; write "
                                             f"{next(k for k, v in CLASSES.items() if v == elb.type)}")
        if lab.vpc_of_cluster(cluster).name != elb.vpc:
            raise AnnotationError(ELB_ID, f"ELB '{elb.name}' is in VPC '{elb.vpc}', cluster '{cluster.name}' in "
                                          f"'{lab.vpc_of_cluster(cluster).name}'")
        algorithm = notes.get(ELB_ALGORITHM, "ROUND_ROBIN")
        if algorithm not in ALGORITHMS:
            raise AnnotationError(ELB_ALGORITHM, f"'{algorithm}' is not supported; write "
                                                 f"{' or '.join(ALGORITHMS)}")
        through = notes.get(ELB_PASS_THROUGH, "false")
        if through not in ("true", "false"):
            raise AnnotationError(ELB_PASS_THROUGH, f"'{through}' is not valid; write \"true\" or \"false\"")
        svc.elb = elb.name
        for index, port in enumerate(svc.spec.ports):
            clash = next((ln for ln in elb.listeners if ln.port == port.port
                          and _l4(ln.protocol) == port.protocol), None)
            if clash is not None:
                raise AnnotationError(ELB_ID, f"ELB '{elb.name}' already listens on {port.protocol} {port.port} "
                                              f"(for {clash.service or 'an Ingress'}); a port takes one listener")
            name = pool_name(cluster.name, svc, port.port, port.protocol)
            elb.pools.append(PoolInfo(name=name, protocol=port.protocol, algorithm=algorithm,
                                      members=members(lab, elb, cluster, svc, index),
                                      health=health_check(notes, port.protocol)))
            elb.listeners.append(ListenerInfo(protocol=port.protocol, port=port.port, pool=name,
                                              service=f"{cluster.name}/{svc.spec.namespace}/{svc.spec.name}"))

    def _elb_for(self, scenario, lab: Lab, cluster: ClusterInfo, svc: ServiceInfo, cls: str, path, ctx, taken,
                 overlap) -> ElbInfo | None:
        notes = svc.spec.annotations
        if ELB_ID in notes:
            found = next((e for e in lab.elbs if e.name == notes[ELB_ID]), None)
            if found is None:
                raise AnnotationError(ELB_ID, f"no ELB '{notes[ELB_ID]}'; ELBs: "
                                              + (", ".join(e.name for e in lab.elbs) or "none (see elbs:)"))
            return found
        if ELB_AUTOCREATE in notes:
            return self._autocreate(scenario, lab, cluster, svc, cls, path, ctx, taken, overlap)
        if svc.spec.loadBalancerIP is not None:  # the older way to name an existing ELB
            return next((e for e in lab.elbs if e.ip == svc.spec.loadBalancerIP), None)
        return None

    def _autocreate(self, scenario, lab: Lab, cluster: ClusterInfo, svc: ServiceInfo, cls: str, path, ctx, taken,
                    overlap) -> ElbInfo:
        text = svc.spec.annotations[ELB_AUTOCREATE]
        try:
            spec = json.loads(text)
        except ValueError:
            spec = None
        if not isinstance(spec, dict) or spec.get("type") not in ("public", "inner"):
            raise AnnotationError(ELB_AUTOCREATE, f"{text!r} is not a JSON object with \"type\": \"public\" or "
                                                  "\"inner\" (and optionally \"name\")")
        name = str(spec.get("name") or naming.ifname("", f"{cluster.name}-{svc.spec.name}",
                                                     unique_by=f"{cluster.name}/{svc.spec.namespace}/{svc.spec.name}"))
        if not _valid_name(name):
            raise AnnotationError(ELB_AUTOCREATE, f"name {name!r} is not a valid ELB name (lowercase letters, "
                                                  "digits and '-')")
        if any(e.name == name for e in lab.elbs):
            raise AnnotationError(ELB_AUTOCREATE, f"an ELB named '{name}' already exists; give another \"name\"")
        if overlap and CLASSES[cls] == "shared":
            raise AnnotationError(ELB_AUTOCREATE, f"a shared ELB's backend-side range {BACKEND_RANGE} overlaps "
                                                  f"{overlap}")
        elb = _new_elb(lab, name, CLASSES[cls], cluster.nodes[0].eth0.subnet, None, path, ctx, taken)
        elb.autocreated_by = f"{cluster.name}/{svc.spec.namespace}/{svc.spec.name}"
        lab.elbs.append(elb)
        if spec["type"] == "public":
            if lab.internet is None:
                raise AnnotationError(ELB_AUTOCREATE, "a public ELB needs `internet:` (the EIP pool)")
            ip = EipPool(scenario, lab, ctx).take(None, path)
            lab.eips.append(EipInfo(ip=ip, bind=elb.ref, kind="elb", private=elb.ip, vpc=elb.vpc))
        return elb

    # -- plan -----------------------------------------------------------------------------
    def fabric(self, lab: Lab) -> list[Op]:
        ops: list[Op] = []
        for elb in lab.elbs:
            ns = elb.netns
            ops += [AddNetns(ns), Sysctl(ns, "net.ipv4.ip_forward", "1"), no_icmp_ratelimit(ns), SetLink(ns, "lo")]
            if elb.datapath == "ipvs":
                ops += [LoadModule(ns, m) for m in ("ip_vs", "ip_vs_rr", "ip_vs_sh")]
                # IPVS connections go through conntrack, so the SNAT of a shared ELB applies.
                ops.append(Sysctl(ns, "net.ipv4.vs.conntrack", "1"))
        return ops

    def machines(self, lab: Lab) -> list[Op]:
        """Each ELB on its subnet, like a VPC host; a shared one also holds its backend-side
        address."""
        ops: list[Op] = []
        for elb in lab.elbs:
            ops += attach_ops(lab, elb.netns, elb.eth0) + [SetLink(elb.netns, "eth0", address=elb.mac)]
            if elb.backend_address is not None:
                ops.append(AddAddress(elb.netns, "eth0", IPv4Interface(f"{elb.backend_address}/32")))
        return ops

    def routes(self, lab: Lab) -> list[Op]:
        """The VPC router: each shared ELB's backend-side address via the ELB (a route of
        the cloud's own, outside the route table and its quota)."""
        return [AddRoute(lab.vpc_named(e.vpc).netns, IPv4Network(f"{e.backend_address}/32"), via=e.ip)
                for e in lab.elbs if e.backend_address is not None]

    def edge(self, lab: Lab) -> list[Op]:
        ops: list[Op] = []
        for vpc in lab.vpcs:
            dedicated = [e for e in lab.elbs if e.vpc == vpc.name and e.type == "dedicated"]
            if dedicated:
                ops += [Sysctl(vpc.netns, "net.bridge.bridge-nf-call-iptables", "1"),
                        NftApply(vpc.netns, steering(lab, vpc.name),
                                 purpose=f"dedicated ELBs of VPC {vpc.name}: replies back through the ELB")]
        for elb in lab.elbs:
            ops.append(NftApply(elb.netns, ruleset(lab, elb), purpose=f"ELB {elb.name}: "
                                f"{'SNAT to the backend-side address' if elb.datapath == 'ipvs' else 'layer-4 listeners'}"))
            if elb.datapath == "ipvs":
                ops.append(IpvsRestore(elb.netns, ipvs_rules(elb), replace=True,
                                       purpose=f"ELB {elb.name}: {len(l4_listeners(elb))} listeners"))
        return ops

    def processes(self, lab: Lab) -> list[Op]:
        """Every nginx (the ELBs' layer 7, the Ingress controller pods: `netlab.cloud.ingress`),
        then one health checker for every ELB of the lab: its first round, which decides
        each member's initial state, sees the backends serving (the pod agent starts before
        the cloud's processes)."""
        from netlab.cloud.ingress import nginx_ops  # that module builds on this one

        ops = nginx_ops(lab)
        checks = [p.health for e in lab.elbs for p in e.pools if p.health]
        if checks:
            # Ready after its first round, which waits up to `timeout` for a silent member.
            ops.append(StartProcess(lab.elbs[0].netns, name=HEALTHCHECK, argv=("netlab-healthcheck", lab.name),
                                    ready_file=f"{HEALTHCHECK}.ready",
                                    ready_timeout=120.0 + max(h.timeout for h in checks)))
        return ops


# -- resolve helpers --------------------------------------------------------------------------

def _valid_name(name: str) -> bool:
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        return False
    return True


def _taken_addresses(lab: Lab) -> set[IPv4Address]:
    out = {n.eth0.ip for c in lab.clusters for n in c.nodes} | {h.eth0.ip for h in lab.hosts}
    out |= {p.ip for c in lab.clusters for p in c.pods}
    return out


def _backend_range_overlap(lab: Lab) -> str | None:
    nets = [(v.cidr, f"VPC '{v.name}' ({v.cidr})") for v in lab.vpcs]
    nets += [(n, f"a CIDR of cluster '{c.name}' ({n})") for c in lab.clusters for n in (c.container_cidr, c.service_cidr)]
    return next((what for net, what in nets if net.overlaps(BACKEND_RANGE)), None)


def _new_elb(lab: Lab, name: str, kind: str, subnet: str | None, ip: IPv4Address | None, path, ctx,
             taken: set[IPv4Address]) -> ElbInfo:
    if any(e.name == name for e in lab.elbs):
        raise ctx.error(path + ("name",), f"duplicate ELB name '{name}'")
    netns = netns_of(lab.name, name)
    if netns in lab.netns_names():
        raise ctx.error(path + ("name",), f"ELB '{name}' would be namespace '{netns}', which another object of "
                                          "the lab has; rename it")
    subnet_name = subnet or lab.vpc.subnets[0].name
    found = next(((v, s) for v in lab.vpcs for s in v.subnets if s.name == subnet_name), None)
    if found is None:
        raise ctx.error(path + ("subnet",), f"unknown subnet '{subnet_name}'; subnets: "
                                            + ", ".join(s.name for v in lab.vpcs for s in v.subnets))
    vpc, sn = found
    pool = ipam.Pool(sn.cidr)
    if ip is not None:
        if not pool.usable(ip):
            raise ctx.error(path + ("ip",), f"{ip} is not a usable address of subnet '{sn.name}' ({sn.cidr})")
        if ip in taken:
            raise ctx.error(path + ("ip",), f"{ip} is already used in subnet '{sn.name}'")
    else:
        # From the top of the subnet down: machines take addresses from the bottom up.
        ip = next((a for a in reversed(list(sn.cidr.hosts())) if pool.usable(a) and a not in taken), None)
        if ip is None:
            raise ctx.error(path, f"subnet '{sn.name}' ({sn.cidr}) has no free address left")
    taken.add(ip)
    index = len(lab.elbs)
    shared = [e for e in lab.elbs if e.type == "shared"]
    return ElbInfo(
        name=name, type=kind, vpc=vpc.name, netns=netns, mac=mac_of(netns),
        eth0=Attachment(subnet=sn.name, address=IPv4Interface(f"{ip}/{sn.cidr.prefixlen}"), gateway=sn.gateway.ip,
                        port=naming.vpc_port(f"elb/{name}")),
        backend_address=BACKEND_RANGE.network_address + 2 + len(shared) if kind == "shared" else None,
        datapath="ipvs" if "ip_vs" in ctx.features else "nftables", mark=MARK_BASE + index + 1)


def _bind_eips(scenario, lab: Lab, ctx) -> None:
    """`eips: [{bind: elb/<name>}]` (left to this object by `netlab.cloud.eip`)."""
    specs = [(i, e) for i, e in enumerate(scenario.eips) if e.bind.startswith("elb/")]
    if not specs:
        return
    pool = EipPool(scenario, lab, ctx)
    for i, spec in specs:
        path = ("eips", i, "bind")
        elb = next((e for e in lab.elbs if e.ref == spec.bind), None)
        if elb is None:
            raise ctx.error(path, f"no ELB '{spec.bind[4:]}'; ELBs: " + (", ".join(e.name for e in lab.elbs) or "none"))
        if lab.eips_of(elb.ref):
            raise ctx.error(path, f"{spec.bind} already has an EIP; an ELB takes one")
        lab.eips.append(EipInfo(ip=pool.take(spec.ip, ("eips", i)), bind=elb.ref, kind="elb", private=elb.ip,
                                vpc=elb.vpc))


def publish(lab: Lab) -> None:
    """`status.loadBalancer.ingress` of every ELB-bound Service: the ELB's private address,
    then its EIPs; `ipMode: Proxy` under `kubernetes.io/elb.pass-through: "true"`."""
    for cluster in lab.clusters:
        for svc in cluster.services:
            if svc.elb is None:
                continue
            elb = lab.elb(svc.elb)
            mode = "Proxy" if svc.spec.annotations.get(ELB_PASS_THROUGH) == "true" else None
            svc.load_balancer = [LoadBalancerIngressInfo(ip=ip, ip_mode=mode)
                                 for ip in [elb.ip] + lab.eips_of(elb.ref)]


# -- renderers --------------------------------------------------------------------------------

def _l4(protocol: str) -> str:
    return "UDP" if protocol == "UDP" else "TCP"


def l4_listeners(elb: ElbInfo) -> list[ListenerInfo]:
    return [ln for ln in elb.listeners if ln.pool is not None]


def live(elb: ElbInfo, pool: PoolInfo, down: frozenset[str]) -> list[MemberInfo]:
    """The members of a pool in rotation (`down`: "<pool> <addr>:<port>" of failed ones)."""
    return [m for m in pool.members if f"{pool.name} {m.key}" not in down]


def ruleset(lab: Lab, elb: ElbInfo, down: frozenset[str] = frozenset()) -> str:
    """The ELB's whole `netlab-elb` table (nftables datapath: every layer-4 listener; IPVS
    datapath: only the shared ELB's SNAT), replacing any previous one in one transaction."""
    out = [f"# netlab {lab.name}: ELB {elb.name} ({elb.type}, {elb.ip})",
           f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    if elb.datapath == "nftables":
        out += ["\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat; policy accept;"]
        for i, ln in enumerate(l4_listeners(elb)):
            pool = elb.pool(ln.pool)
            members = live(elb, pool, down)
            proto = ln.protocol.lower()
            note = f"{ln.protocol}:{ln.port} → {pool.name}, {len(members)}/{len(pool.members)} members in rotation"
            if not members:
                out.append(f'\t\t# {note}: nothing forwarded, the ELB refuses')
                continue
            pick = "numgen inc" if pool.algorithm == "ROUND_ROBIN" else "jhash ip saddr"
            targets = ", ".join(f"{k} : {m.address} . {m.port}" for k, m in enumerate(members))
            out.append(f"\t\tip daddr {elb.ip} {proto} dport {ln.port} dnat ip to {pick} mod {len(members)} "
                       f"map {{ {targets} }} comment \"{note}\"")
        out.append("\t}")
    if elb.backend_address is not None:
        backends = sorted({(m.address, m.port) for p in elb.pools for m in p.members})
        out += ["\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat; policy accept;"]
        if backends:
            targets = ", ".join(f"{a} . {p}" for a, p in backends)
            out.append(f"\t\tip saddr != {elb.backend_address} meta l4proto {{ tcp, udp }} ip daddr . th dport {{ {targets} }} "
                       f"snat to {elb.backend_address} comment \"shared ELB: backends see its backend-side address\"")
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def ipvs_rules(elb: ElbInfo, down: frozenset[str] = frozenset()) -> str:
    """`ipvsadm -R` input: one virtual server per layer-4 listener, NAT mode; a member out
    of rotation keeps weight 0 (no new connections)."""
    out = []
    for ln in l4_listeners(elb):
        pool = elb.pool(ln.pool)
        flag = "-u" if ln.protocol == "UDP" else "-t"
        sched = "rr" if pool.algorithm == "ROUND_ROBIN" else "sh"
        out.append(f"-A {flag} {elb.ip}:{ln.port} -s {sched}")
        for m in pool.members:
            weight = 0 if f"{pool.name} {m.key}" in down else 1
            out.append(f"-a {flag} {elb.ip}:{ln.port} -r {m.address}:{m.port} -m -w {weight}")
    return "\n".join(out) + "\n"


def ipvs_weight(elb: ElbInfo, pool: PoolInfo, member: MemberInfo, up: bool) -> str:
    """`ipvsadm -R` input that puts one member in or out of rotation on every listener of
    its pool."""
    return "".join(f"-e {'-u' if ln.protocol == 'UDP' else '-t'} {elb.ip}:{ln.port} -r {member.address}:"
                   f"{member.port} -m -w {1 if up else 0}\n" for ln in l4_listeners(elb) if ln.pool == pool.name)


def steering(lab: Lab, vpc: str) -> str:
    """The VPC router's `netlab-elb` table: replies to a dedicated ELB's backend connections
    go back through that ELB (the client's own address is on them, so the router would
    otherwise send them straight to the client, who never talked to the backend)."""
    out = [f"# netlab {lab.name}: VPC {vpc}: what the fabric does for dedicated ELBs",
           f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
           "\tchain prerouting {", "\t\ttype filter hook prerouting priority mangle; policy accept;"]
    for elb in lab.elbs:
        if elb.vpc != vpc or elb.type != "dedicated":
            continue
        bridge = lab.vpc_named(vpc).subnet(elb.eth0.subnet).bridge
        out += [f"\t\tether saddr {elb.mac} ip saddr != {elb.ip} ct direction original ct mark set {elb.mark:#x} "
                f"comment \"{elb.ref}: a connection to a backend, with the client's address\"",
                f"\t\tct direction reply ct mark {elb.mark:#x} dup to {elb.ip} device \"{bridge}\" drop "
                f"comment \"{elb.ref}: the backend's reply goes back through the ELB\""]
    out += ["\t}", "}"]
    return "\n".join(out) + "\n"


OBJECT = ElbObject()
