"""References to lab objects as users write them in checks and commands (pure).

A host is named alone; a cluster's node or pod is `<cluster>/<name>`, a Service
`<cluster>/svc/<name>` (or `<cluster>/svc/<namespace>/<name>`: its ClusterIP); the cloud's
objects are `internet`, `internet/<public host>`, `igw/<vpc>`, `natgw/<name>`, `elb/<name>`
(its private address); an address of the lab (an EIP too) may stand in for an object. A
`:port` suffix selects a port.

A destination (a check's `to`) is an object with an optional `:port`, read the way users
think of it: `c1/web-1:8080` (a pod's port), `c1/svc/web` or `c1/svc/web:80` (a Service
port on its ClusterIP; without a port, the Service's first port), `c1/node-1:30080` (a
node's port, which is a NodePort when a Service of the node's cluster owns it), and
`c1/svc/web:nodeport` (the Service's NodePort on the cluster's first node).

`owner_of` goes the other way: which lab object holds an address (to name who answered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address

from netlab.lab.model import (ClusterInfo, EipInfo, HostInfo, Lab, NodeInfo, PodInfo, PublicHostInfo, ServiceInfo,
                              VpcInfo)
from netlab.lab.services import selected, target_port
from netlab.scenario.types import Check, ServicePort


@dataclass(frozen=True)
class Target:
    kind: str  # a lab object kind ("host", "node", "pod", "service", ...) or "ip" for a bare address
    name: str  # display name: `ecs-1`, `c1/web-1`, `c1/svc/web`, or the address
    netns: str | None  # where probes from this object run (None for a Service or an address)
    ip: IPv4Address
    obj: HostInfo | NodeInfo | PodInfo | VpcInfo | PublicHostInfo | EipInfo | object | None
    cluster: ClusterInfo | None = None
    service: ServiceInfo | None = None


@dataclass(frozen=True)
class Destination:
    """Where a check goes and what answers there by default."""

    kind: str  # pod | node | host | ip | service (ClusterIP) | nodeport | ...
    name: str  # display: `c1/web-1`, `c1/svc/web`, `c1/node-1`
    ip: IPv4Address
    port: int | None
    proto: str | None  # implied by a Service port ("tcp"/"udp"); None: the check decides
    target: Target
    service: ServiceInfo | None = None
    service_port: ServicePort | None = None
    node: NodeInfo | None = None  # a NodePort: the node whose port is used
    endpoints: tuple[PodInfo, ...] = field(default=())  # who may answer a Service or NodePort

    @property
    def label(self) -> str:
        return f"{self.name}:{self.port}" if self.port else self.name


class RefError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def split_port(text: str) -> tuple[str, int | None]:
    head, sep, tail = text.rpartition(":")
    if not sep:
        return text, None
    if not tail.isdigit() or not 1 <= int(tail) <= 65535:
        raise RefError(f"'{tail}' is not a port number (1-65535)")
    return head, int(tail)


def lookup(lab: Lab, text: str) -> Target:
    """Resolve an object reference (without port) to a target; raises RefError."""
    if "/" in text:
        cluster_name, _, name = text.partition("/")
        cluster = next((c for c in lab.clusters if c.name == cluster_name), None)
        if cluster is None and (edge := _edge(lab, cluster_name, name, text)) is not None:
            return edge
        if cluster is None:
            raise RefError(f"unknown cluster '{cluster_name}'; clusters: {_names(lab.clusters)}")
        if name.startswith("svc/"):
            return _service(cluster, text, name[4:])
        pod = next((p for p in cluster.pods if p.name == name), None)
        if pod is not None:
            return Target("pod", text, pod.netns, pod.ip, pod, cluster)
        node = next((n for n in cluster.nodes if n.name == name), None)
        if node is not None:
            return Target("node", text, node.netns, node.eth0.ip, node, cluster)
        raise RefError(f"cluster '{cluster_name}' has no node or pod '{name}'; "
                       f"nodes: {_names(cluster.nodes)}; pods: {_names(cluster.pods)}")
    host = next((h for h in lab.hosts if h.name == text), None)
    if host is not None:
        return Target("host", text, host.netns, host.eth0.ip, host)
    vpc = next((v for v in lab.vpcs if v.name == text), None)
    if vpc is not None:  # a VPC's router: its first subnet's gateway address
        return Target("vpc", text, vpc.netns, vpc.subnets[0].gateway.ip, vpc)
    if text == "internet" and lab.internet is not None:  # its router: the public hosts' gateway
        return Target("internet", text, lab.internet.netns, lab.internet.gateway.ip, lab.internet)
    try:
        ip = ip_address(text)
    except ValueError:
        raise RefError(f"unknown object '{text}'; write a host name ({_names(lab.hosts)}), "
                       "<cluster>/<node or pod>, <cluster>/svc/<service>, or an address of the lab") from None
    for t in _all_targets(lab):
        if t.ip == ip:
            return t
    eip = next((e for e in lab.eips if e.ip == ip), None)
    if eip is not None:
        return Target("eip", str(ip), None, ip, eip)
    public = [lab.internet.cidr, lab.internet.eip_pool] if lab.internet else []
    if not isinstance(ip, IPv4Address) or not any(
            ip in net for net in [v.cidr for v in lab.vpcs] + [c.container_cidr for c in lab.clusters]
            + [c.service_cidr for c in lab.clusters] + public):
        raise RefError(f"{ip} is not an address of this lab")
    return Target("ip", str(ip), None, ip, None)


def lookup_object(lab: Lab, text: str) -> Target:
    """As `lookup`, and also a node or pod named alone (`web-1`) when exactly one cluster
    has an object of that name, as `netlab show` accepts a bare node name."""
    try:
        return lookup(lab, text)
    except RefError as first:
        if "/" in text:
            raise
        owners = [c.name for c in lab.clusters if any(o.name == text for o in [*c.nodes, *c.pods])]
        if len(owners) == 1:
            return lookup(lab, f"{owners[0]}/{text}")
        if owners:
            raise RefError(f"'{text}' is in clusters {', '.join(owners)}; write "
                           + " or ".join(f"{c}/{text}" for c in owners)) from None
        raise first


def _service(cluster: ClusterInfo, text: str, name: str) -> Target:
    """`c1/svc/web` (namespace default) or `c1/svc/prod/web`: the Service's ClusterIP."""
    namespace, _, svc_name = name.rpartition("/")
    found = next((s for s in cluster.services
                  if s.spec.name == svc_name and s.spec.namespace == (namespace or "default")), None)
    if found is None:
        raise RefError(f"cluster '{cluster.name}' has no Service '{name}'; Services: "
                       + (", ".join(s.spec.name for s in cluster.services) or "(none)"))
    return Target("service", text, None, found.cluster_ip, None, cluster, found)


def service_name(cluster: ClusterInfo, info: ServiceInfo) -> str:
    """How checks name a Service: `c1/svc/web`, `c1/svc/prod/web` outside namespace default."""
    ns = "" if info.spec.namespace == "default" else f"{info.spec.namespace}/"
    return f"{cluster.name}/svc/{ns}{info.spec.name}"


def endpoints(info: ServiceInfo, cluster: ClusterInfo, port: ServicePort) -> list[PodInfo]:
    """The pods the endpoint controller lists for one Service port."""
    return [p for p in selected(info, cluster.pods) if target_port(port, p) is not None]


def destination(lab: Lab, text: str, proto: str | None = None) -> Destination:
    """A check's `to`, resolved; raises RefError."""
    head, sep, tail = text.rpartition(":")
    if sep and tail == "nodeport":
        return _nodeport_of_service(lab, text, head, proto)
    name, port = split_port(text)
    target = lookup(lab, name)
    if target.kind == "eip" and target.obj.private is not None:
        # An EIP stands for what it is bound to (1:1 NAT at the internet gateway).
        bound = destination(lab, f"{target.obj.bind}:{port}" if port else target.obj.bind, proto)
        return Destination(bound.kind, str(target.ip), target.ip, bound.port, bound.proto, bound.target,
                           bound.service, bound.service_port, bound.node, bound.endpoints)
    if target.kind == "service":
        return _service_port(target, port, proto)
    if target.kind == "node" and port is not None:
        found = _nodeport(target.cluster, port, proto)
        if found:
            info, sp = found
            return _nodeport_destination(target, info, sp, target.obj, proto)
    return Destination(target.kind, target.name, target.ip, port, None, target)


def _service_port(target: Target, port: int | None, proto: str | None) -> Destination:
    info = target.service
    ports = [p for p in info.spec.ports if proto is None or p.protocol.lower() == proto]
    if port is not None:
        ports = [p for p in ports if p.port == port]
    if not ports:
        listed = ", ".join(f"{p.port}/{p.protocol}" for p in info.spec.ports)
        raise RefError(f"Service {target.name} has no port {port or ''}{'/' + proto if proto else ''}; "
                       f"its ports: {listed}")
    sp = next((p for p in ports if p.protocol == "TCP"), ports[0])
    return Destination("service", target.name, target.ip, sp.port, sp.protocol.lower(), target, info, sp,
                       endpoints=tuple(endpoints(info, target.cluster, sp)))


def _nodeport(cluster: ClusterInfo, port: int, proto: str | None):
    for info in cluster.services:
        for sp in info.spec.ports:
            if sp.nodePort == port and (proto is None or sp.protocol.lower() == proto):
                return info, sp
    return None


def _nodeport_destination(target: Target, info: ServiceInfo, sp: ServicePort, node: NodeInfo,
                          proto: str | None) -> Destination:
    eps = endpoints(info, target.cluster, sp)
    if info.spec.externalTrafficPolicy == "Local":
        eps = [p for p in eps if p.node == node.name]
    return Destination("nodeport", f"{target.cluster.name}/{node.name}", node.eth0.ip, sp.nodePort,
                       sp.protocol.lower(), target, info, sp, node, tuple(eps))


def _nodeport_of_service(lab: Lab, text: str, head: str, proto: str | None) -> Destination:
    target = lookup(lab, head)
    if target.kind != "service":
        raise RefError(f"':nodeport' follows a Service (<cluster>/svc/<name>:nodeport), not '{head}'")
    info = target.service
    ports = [p for p in info.spec.ports if p.nodePort and (proto is None or p.protocol.lower() == proto)]
    if not ports:
        raise RefError(f"Service {target.name} has no NodePort (type {info.spec.type}); "
                       "a NodePort needs type NodePort or LoadBalancer")
    sp = next((p for p in ports if p.protocol == "TCP"), ports[0])
    node = target.cluster.nodes[0]
    node_target = Target("node", f"{target.cluster.name}/{node.name}", node.netns, node.eth0.ip, node,
                         target.cluster)
    return _nodeport_destination(node_target, info, sp, node, proto)


def check_refs(lab: Lab, check: Check) -> None:
    """Every reference of an explicit check resolves; raises RefError naming the field."""
    def at(field_name: str, fn):
        try:
            return fn()
        except RefError as e:
            raise RefError(str(e), field_name) from None

    src = at("from", lambda: lookup(lab, check.from_))
    if src.netns is None:
        raise RefError(f"a check must start from a host, node or pod, not {check.from_}", "from")
    dst = at("to", lambda: destination(lab, check.to, check.proto))
    if dst.port is None and check.proto in ("tcp", "udp"):
        raise RefError(f"proto {check.proto} needs a port: '{check.to}:PORT'", "to")
    for text in as_list(check.source):
        at("source", lambda text=text: lookup(lab, text))
    for text in as_list(check.backend):
        target = at("backend", lambda text=text: lookup(lab, text))
        if target.kind not in ("pod", "host"):
            raise RefError(f"{text} is not a pod or host (what answers a request)", "backend")


def as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def source_address(lab: Lab, text: str) -> IPv4Address:
    """The address a `source:` entry stands for (an object's own address)."""
    return lookup(lab, text).ip


def owner_of(lab: Lab, ip: IPv4Address | str, book: dict[IPv4Address, str] | None = None) -> str | None:
    """The lab object that holds an address: `c1/node-1`, `ecs-1`, `vpc` (the router), a
    Service; None for an address the lab does not hold. `book`: `address_book(lab)`, for
    callers that look up many addresses."""
    return (book if book is not None else address_book(lab)).get(ip_address(str(ip)))


def address_book(lab: Lab) -> dict[IPv4Address, str]:
    """Every address the lab holds → the object holding it (machines first: a node's pod
    gateway or a ClusterIP never hides a machine's own address)."""
    book: dict[IPv4Address, str] = {}
    for c in lab.clusters:
        for s in c.services:
            book[s.cluster_ip] = service_name(c, s)
        for n in c.nodes:
            if n.pod_cidr is not None:
                book[n.pod_cidr.network_address] = f"{c.name}/{n.name}"
            if n.pod_gateway is not None:
                book[n.pod_gateway] = f"{c.name}/{n.name}"
    for vpc in lab.vpcs:
        for sn in vpc.subnets:
            book[sn.gateway.ip] = vpc.name
    if lab.internet is not None:
        book[lab.internet.gateway.ip] = "internet"
    links = [(g.ref, g.vpc, g.vpc_link) for g in lab.igws] + [(g.ref, "internet", g.internet_link) for g in lab.igws]
    links += [(g.ref, g.vpc, g.vpc_link) for g in lab.nat_gateways]
    links += [(g.ref, f"igw/{g.vpc}", g.igw_link) for g in lab.nat_gateways]
    links += [(p.vpcs[0], p.vpcs[1], p.link) for p in lab.peerings]
    for near, far, link in links:
        book[link.address.ip] = near
        book[link.peer_address.ip] = far
    for eip in lab.eips:
        book[eip.ip] = f"EIP of {eip.bind}"
    book.update({t.ip: t.name for t in _all_targets(lab)})
    return book


def _edge(lab: Lab, kind: str, name: str, text: str) -> Target | None:
    """`internet/<host>`, `igw/<vpc>`, `natgw/<name>`, `elb/<name>`: the cloud's objects
    (None: not one)."""
    if kind == "internet" and lab.internet is not None:
        host = next((h for h in lab.internet.hosts if h.name == name), None)
        if host is None:
            raise RefError(f"the internet has no host '{name}'; public hosts: {_names(lab.internet.hosts)}")
        return Target("host", text, host.netns, host.eth0.ip, host)
    if kind == "igw" and lab.igws:
        igw = next((g for g in lab.igws if g.vpc == name), None)
        if igw is None:
            raise RefError(f"no internet gateway '{text}'; gateways: {', '.join(g.ref for g in lab.igws)}")
        return Target("igw", text, igw.netns, igw.internet_link.address.ip, igw)
    if kind == "elb" and lab.elbs:
        found = next((e for e in lab.elbs if e.name == name), None)
        if found is None:
            raise RefError(f"no ELB '{name}'; ELBs: {_names(lab.elbs)}")
        return Target("elb", text, found.netns, found.ip, found)
    if kind == "natgw" and lab.nat_gateways:
        gw = next((g for g in lab.nat_gateways if g.name == name), None)
        if gw is None:
            raise RefError(f"no NAT gateway '{name}'; NAT gateways: {_names(lab.nat_gateways)}")
        return Target("natgw", text, gw.netns, gw.eips[0], gw)
    return None


def _all_targets(lab: Lab) -> list[Target]:
    out = [Target("host", h.name, h.netns, h.eth0.ip, h) for h in lab.hosts]
    out += [Target("host", h.ref, h.netns, h.eth0.ip, h) for h in lab.public_hosts()]
    out += [Target("elb", e.ref, e.netns, e.ip, e) for e in lab.elbs]
    for c in lab.clusters:
        out += [Target("node", f"{c.name}/{n.name}", n.netns, n.eth0.ip, n, c) for n in c.nodes]
        out += [Target("pod", f"{c.name}/{p.name}", p.netns, p.ip, p, c) for p in c.pods]
    return out


def _names(items) -> str:
    return ", ".join(i.name for i in items) or "(none)"
