"""References to lab objects as users write them in checks: `ecs-1`, `c1/web-1`, `c1/web-1:8080`.

A host is named alone; a cluster's node or pod is `<cluster>/<name>`, a Service
`<cluster>/svc/<name>` (its ClusterIP); the cloud's objects are `internet`,
`internet/<public host>`, `igw/<vpc>`, `natgw/<name>`, `elb/<name>` (its private
address); an address of the lab (an EIP too) may stand in for an object. A `:port` suffix selects a port.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from netlab.lab.model import EipInfo, HostInfo, Lab, NodeInfo, PodInfo, PublicHostInfo, VpcInfo


@dataclass(frozen=True)
class Target:
    kind: str  # a lab object kind ("host", "node", "pod") or "ip" for a bare address
    name: str  # display name: `ecs-1`, `c1/web-1`, or the address
    netns: str | None  # where probes from this object run (None for a bare address)
    ip: IPv4Address
    obj: HostInfo | NodeInfo | PodInfo | VpcInfo | PublicHostInfo | EipInfo | object | None


class RefError(ValueError):
    pass


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
            return Target("pod", text, pod.netns, pod.ip, pod)
        node = next((n for n in cluster.nodes if n.name == name), None)
        if node is not None:
            return Target("node", text, node.netns, node.eth0.ip, node)
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
                       "<cluster>/<node or pod>, or an address of the lab") from None
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


def _service(cluster, text: str, name: str) -> Target:
    """`c1/svc/web` (namespace default) or `c1/svc/prod/web`: the Service's ClusterIP."""
    namespace, _, svc_name = name.rpartition("/")
    found = next((s for s in cluster.services
                  if s.spec.name == svc_name and s.spec.namespace == (namespace or "default")), None)
    if found is None:
        raise RefError(f"cluster '{cluster.name}' has no Service '{name}'; Services: "
                       + (", ".join(s.spec.name for s in cluster.services) or "(none)"))
    return Target("service", text, None, found.cluster_ip, None)


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
        out += [Target("node", f"{c.name}/{n.name}", n.netns, n.eth0.ip, n) for n in c.nodes]
        out += [Target("pod", f"{c.name}/{p.name}", p.netns, p.ip, p) for p in c.pods]
    return out


def _names(items) -> str:
    return ", ".join(i.name for i in items) or "(none)"
