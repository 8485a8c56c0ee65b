"""References to lab objects as users write them in checks: `ecs-1`, `c1/web-1`, `c1/web-1:8080`.

A host is named alone; a cluster's node or pod is `<cluster>/<name>`, a Service
`<cluster>/svc/<name>` (its ClusterIP); an address of the lab may stand in for an object.
A `:port` suffix selects a port.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from netlab.lab.model import HostInfo, Lab, NodeInfo, PodInfo, VpcInfo


@dataclass(frozen=True)
class Target:
    kind: str  # a lab object kind ("host", "node", "pod") or "ip" for a bare address
    name: str  # display name: `ecs-1`, `c1/web-1`, or the address
    netns: str | None  # where probes from this object run (None for a bare address)
    ip: IPv4Address
    obj: HostInfo | NodeInfo | PodInfo | VpcInfo | None


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
    try:
        ip = ip_address(text)
    except ValueError:
        raise RefError(f"unknown object '{text}'; write a host name ({_names(lab.hosts)}), "
                       "<cluster>/<node or pod>, or an address of the lab") from None
    for t in _all_targets(lab):
        if t.ip == ip:
            return t
    if not isinstance(ip, IPv4Address) or not any(
            ip in net for net in [v.cidr for v in lab.vpcs] + [c.container_cidr for c in lab.clusters]
            + [c.service_cidr for c in lab.clusters]):
        raise RefError(f"{ip} is not an address of this lab")
    return Target("ip", str(ip), None, ip, None)


def _service(cluster, text: str, name: str) -> Target:
    """`c1/svc/web` (namespace default) or `c1/svc/prod/web`: the Service's ClusterIP."""
    namespace, _, svc_name = name.rpartition("/")
    found = next((s for s in cluster.services
                  if s.spec.name == svc_name and s.spec.namespace == (namespace or "default")), None)
    if found is None:
        raise RefError(f"cluster '{cluster.name}' has no Service '{name}'; Services: "
                       + (", ".join(s.spec.name for s in cluster.services) or "(none)"))
    return Target("service", text, None, found.cluster_ip, None)


def _all_targets(lab: Lab) -> list[Target]:
    out = [Target("host", h.name, h.netns, h.eth0.ip, h) for h in lab.hosts]
    for c in lab.clusters:
        out += [Target("node", f"{c.name}/{n.name}", n.netns, n.eth0.ip, n) for n in c.nodes]
        out += [Target("pod", f"{c.name}/{p.name}", p.netns, p.ip, p) for p in c.pods]
    return out


def _names(items) -> str:
    return ", ".join(i.name for i in items) or "(none)"
