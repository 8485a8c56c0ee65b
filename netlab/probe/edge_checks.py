"""The access scenarios that cross the VPC's edge, as checks (pure): the internet (EIPs, the
NAT gateway), and VPC peering.

Each expectation is derived the way the service decides it, from the resolved lab:

1. the address a workload's packet carries when it leaves its node, for this destination:
   the network model's `source_towards` (tunnel: the node IP; vpc: the pod IP toward the
   non-masquerade CIDRs, else the node IP; eni: the pod IP);
2. toward the internet, what the VPC does with that address: an EIP bound to it wins (node
   EIP, pod EIP, host EIP); otherwise the route table's default route to the NAT gateway,
   whose SNAT rule covering the address gives the NAT gateway's EIP; otherwise it stays in
   the VPC (blocked);
3. toward a peered VPC, both route tables: this VPC must route the destination over the
   peering, the peer must route the source address back over it, and the far VPC must
   deliver it (a subnet of its own, or a node's pod CIDR).

So every row carries the source the far end must see (pod IP, node IP, node EIP, pod EIP,
NAT-gateway EIP, client IP), and its name says the mechanism in parentheses. The security
groups of nodes and hosts (a follow-up) add one more question to the same derivation: does
the far end's group admit the source from step 1 or 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from netlab import models
from netlab.ingress.addon import is_controller
from netlab.lab.model import (ClusterInfo, EipInfo, HostInfo, Lab, NodeInfo, PeeringInfo, PodInfo, PublicHostInfo,
                              SubnetInfo, VpcInfo, VpcRoute)
from netlab.lab.services import selected, target_port
from netlab.probe.checks import CheckSpec


@dataclass(frozen=True)
class Egress:
    """How a private address leaves the VPC for the internet."""

    public: IPv4Address | None  # the source the internet sees; None: it does not get out
    how: str  # e.g. "node EIP 198.51.100.10", "NAT gateway ngw (rule nodes)", "no EIP, no SNAT rule"


def internet_egress(lab: Lab, vpc: VpcInfo, private: IPv4Address, dst: IPv4Address) -> Egress | None:
    """What the VPC does with a packet from `private` to the public address `dst`; None if
    the route table sends `dst` somewhere specific (not the internet)."""
    route = vpc.lookup(dst)
    if isinstance(route, SubnetInfo) or (isinstance(route, VpcRoute) and route.destination.prefixlen):
        return None
    eip = next((e for e in lab.eips if e.private == private), None)
    if eip is not None:
        return Egress(eip.ip, f"{eip.kind} EIP {eip.ip}")
    gw = next((g for g in lab.nat_gateways if route is not None and route.target == g.ref), None)
    if gw is None:
        return Egress(None, "no EIP, no route to a NAT gateway")
    rule = next((r for r in gw.snat_rules if private in r.source), None)
    if rule is None:
        return Egress(None, f"no EIP, and NAT gateway {gw.name} has no SNAT rule for {private}")
    return Egress(rule.eip, f"NAT gateway {gw.name}, SNAT rule {rule.subnet} → {rule.eip}")


def delivers(vpc: VpcInfo, ip: IPv4Address) -> bool:
    """Does the VPC itself deliver `ip` (a subnet address, or a node's pod CIDR)?"""
    found = vpc.lookup(ip)
    return isinstance(found, SubnetInfo) or (isinstance(found, VpcRoute) and found.target is None)


def over(vpc: VpcInfo, ip: IPv4Address, peering: PeeringInfo) -> bool:
    """Does the VPC route `ip` over this peering?"""
    found = vpc.lookup(ip)
    return isinstance(found, VpcRoute) and found.target == f"peering/{peering.name}"


def _tcp_port(obj) -> int | None:
    return next((p.port for p in obj.ports if p.protocol == "TCP"), None)


def _ref(cluster: ClusterInfo, obj: NodeInfo | PodInfo) -> str:
    return f"{cluster.name}/{obj.name}"


def _public_ends(lab: Lab) -> tuple[PublicHostInfo | None, PublicHostInfo | None]:
    """(client, server): a public host serving TCP, and another public host to call from."""
    hosts = lab.public_hosts()
    server = next((h for h in hosts if _tcp_port(h)), None)
    client = next((h for h in hosts if h is not server), server)
    return client, server


def _to_internet(category: str, src: str, netns: str, src_ip: IPv4Address, via: str,
                 server: PublicHostInfo, egress: Egress) -> CheckSpec:
    port = _tcp_port(server)
    reach = egress.public is not None
    return CheckSpec(name=f"{category}: {src} → {server.ref}:{port} ({via}{egress.how})", src=src, src_netns=netns,
                     src_ip=src_ip, dst=server.ref, dst_ip=server.eth0.ip, port=port, proto="tcp",
                     expect="reach" if reach else "blocked", expect_source=egress.public,
                     expect_backend=server.ref if reach else None)


def internet_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    client, server = _public_ends(lab)
    out = _to_the_internet(lab, cluster, server) if server else []
    return out + (_from_internet(lab, cluster, client) if client else [])


def _to_the_internet(lab: Lab, cluster: ClusterInfo, server: PublicHostInfo) -> list[CheckSpec]:
    """Every node, and a pod per node (and every pod with an EIP), call a public server."""
    model = models.get(cluster.model)
    vpc = lab.vpc_of_cluster(cluster)
    out: list[CheckSpec] = []
    for node in cluster.nodes:
        egress = internet_egress(lab, vpc, node.eth0.ip, server.eth0.ip)
        if egress:
            out.append(_to_internet("node→internet", _ref(cluster, node), node.netns, node.eth0.ip, "",
                                    server, egress))
    pod_eips = {e.private for e in lab.eips if e.kind == "pod"}
    sources = [pods[0] for n in cluster.nodes if (pods := cluster.pods_on(n.name))]
    sources += [p for p in cluster.pods if p.ip in pod_eips and p not in sources]
    for pod in sources:
        node = cluster.node(pod.node)
        private = model.source_towards(cluster, node, pod, server.eth0.ip)
        egress = internet_egress(lab, vpc, private, server.eth0.ip)
        if egress:
            via = "pod IP, " if private == pod.ip else "SNAT to the node IP, "
            out.append(_to_internet("pod→internet", _ref(cluster, pod), pod.netns, pod.ip, via, server, egress))
    return out


def _from_internet(lab: Lab, cluster: ClusterInfo, client: PublicHostInfo) -> list[CheckSpec]:
    """A public client reaches NodePorts at the nodes' EIPs (not at their private IPs) and
    an eni pod at its own EIP."""
    model = models.get(cluster.model)
    out: list[CheckSpec] = []
    base = dict(src=client.ref, src_netns=client.netns, src_ip=client.eth0.ip)
    eip_of = {e.private: e for e in lab.eips if e.private is not None}
    for info in cluster.services:
        port = next((p for p in info.spec.ports if p.protocol == "TCP" and p.nodePort), None)
        if info.spec.type == "ClusterIP" or port is None or is_controller(info):
            continue
        eps = [p for p in selected(info, cluster.pods) if target_port(port, p) is not None]
        if not eps:
            continue
        local = info.spec.externalTrafficPolicy == "Local"
        svc = f"{cluster.name}/svc/{info.spec.name}"
        for node in cluster.nodes:
            eip = eip_of.get(node.eth0.ip)
            if eip is None:
                continue
            on_node = [e for e in eps if e.node == node.name]
            name = (f"internet→NodePort via node EIP: {client.ref} → {svc} at {eip.ip}:{port.nodePort} "
                    f"({node.name}'s EIP, externalTrafficPolicy {info.spec.externalTrafficPolicy})")
            target = dict(dst=str(eip.ip), dst_ip=eip.ip, port=port.nodePort)
            if local and not on_node:
                out.append(CheckSpec(name=name, proto="syn", expect="dropped", cluster=cluster.name, **base, **target))
                continue
            allowed = on_node if local else eps
            out.append(CheckSpec(name=name, proto="tcp", **base, **target,
                                 allowed_backends=tuple(_ref(cluster, e) for e in allowed),
                                 allowed_sources=(client.eth0.ip,) if local else model.node_addresses(cluster, node)))
        bare = next((n for n in cluster.nodes if n.eth0.ip not in eip_of), None)
        if bare is not None:
            out.append(CheckSpec(
                name=f"internet→node IP: {client.ref} → {svc} at {bare.eth0.ip}:{port.nodePort} "
                     f"({cluster.name}/{bare.name}'s private IP: not routed on the internet)",
                dst=_ref(cluster, bare), dst_ip=bare.eth0.ip, port=port.nodePort, proto="tcp", expect="blocked",
                **base))
    for pod in cluster.pods:
        eip = eip_of.get(pod.ip)
        port = _tcp_port(pod)
        if eip is None or port is None:
            continue
        out.append(CheckSpec(
            name=f"internet→pod EIP: {client.ref} → {eip.ip}:{port} ({_ref(cluster, pod)}'s EIP, 1:1 NAT)",
            dst=str(eip.ip), dst_ip=eip.ip, port=port, proto="tcp", expect_source=client.eth0.ip,
            expect_backend=_ref(cluster, pod), **base))
    return out


def peering_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    """A pod calls a host of a peered VPC, and that host calls a pod."""
    model = models.get(cluster.model)
    vpc = lab.vpc_of_cluster(cluster)
    with_pods = [n for n in cluster.nodes if cluster.pods_on(n.name)]
    if not with_pods:
        return []
    out: list[CheckSpec] = []
    for peering in lab.peerings:
        if vpc.name not in peering.vpcs:
            continue
        peer = lab.vpc_named(next(v for v in peering.vpcs if v != vpc.name))
        hosts = lab.hosts_in(peer)
        server = next((h for h in hosts if _tcp_port(h)), None)
        if server is not None:
            node = with_pods[0]
            pod = cluster.pods_on(node.name)[0]
            private = model.source_towards(cluster, node, pod, server.eth0.ip)
            there = over(vpc, server.eth0.ip, peering)
            back = over(peer, private, peering) and delivers(vpc, private)
            why = ("pod IP" if private == pod.ip else "SNAT to the node IP") + (
                f"; {vpc.name} routes {server.eth0.ip} over {peering.name}" if there
                else f"; {vpc.name} has no route to {server.eth0.ip} over {peering.name}") + (
                "" if not there else f", {peer.name} routes {private} back" if back
                else f", {peer.name} has no route back to {private}")
            reach = there and back
            port = _tcp_port(server)
            out.append(CheckSpec(
                name=f"pod→peer VPC host: {_ref(cluster, pod)} → {server.name}:{port} "
                     f"(peering {peering.name}: {why})",
                src=_ref(cluster, pod), src_netns=pod.netns, src_ip=pod.ip, dst=server.name, dst_ip=server.eth0.ip,
                port=port, proto="tcp", expect="reach" if reach else "blocked",
                expect_source=private if reach else None, expect_backend=server.name if reach else None))
        target = next((p for p in cluster.pods if _tcp_port(p)), None)
        if hosts and target is not None:
            out.append(_peer_to_pod(lab, cluster, vpc, peer, peering, hosts[0], target))
    return out


def _peer_to_pod(lab: Lab, cluster: ClusterInfo, vpc: VpcInfo, peer: VpcInfo, peering: PeeringInfo,
                 host: HostInfo, pod: PodInfo) -> CheckSpec:
    there = over(peer, pod.ip, peering)
    arrives = delivers(vpc, pod.ip)
    back = over(vpc, host.eth0.ip, peering)
    if not there:
        why = f"{peer.name} has no route to {pod.ip} over {peering.name}"
    elif not arrives:
        why = f"{vpc.name} has no route to the container CIDR"
    elif not back:
        why = f"{vpc.name} has no route back to {host.eth0.ip}"
    else:
        why = f"{peer.name} routes {pod.ip} over {peering.name}"
    reach = there and arrives and back
    port = _tcp_port(pod)
    return CheckSpec(
        name=f"peer VPC host→pod: {host.name} → {_ref(cluster, pod)}:{port} (peering {peering.name}: {why})",
        src=host.name, src_netns=host.netns, src_ip=host.eth0.ip, dst=_ref(cluster, pod), dst_ip=pod.ip, port=port,
        proto="tcp", expect="reach" if reach else "blocked", expect_source=host.eth0.ip if reach else None,
        expect_backend=_ref(cluster, pod) if reach else None)


def hosts_matrix(lab: Lab) -> list[CheckSpec]:
    """VPC hosts toward the internet, and a public client toward hosts' EIPs."""
    client, server = _public_ends(lab)
    out: list[CheckSpec] = []
    for host in lab.hosts:
        vpc = lab.vpc_of_subnet(host.eth0.subnet)
        egress = internet_egress(lab, vpc, host.eth0.ip, server.eth0.ip) if server else None
        if egress:
            out.append(_to_internet("VPC host→internet", host.name, host.netns, host.eth0.ip, "", server, egress))
        eip: EipInfo | None = next((e for e in lab.eips if e.private == host.eth0.ip), None)
        port = _tcp_port(host)
        if client is not None and eip is not None and port is not None:
            out.append(CheckSpec(
                name=f"internet→host EIP: {client.ref} → {eip.ip}:{port} ({host.name}'s EIP, 1:1 NAT)",
                src=client.ref, src_netns=client.netns, src_ip=client.eth0.ip, dst=str(eip.ip), dst_ip=eip.ip,
                port=port, proto="tcp", expect_source=client.eth0.ip, expect_backend=host.name))
    return out


def edge_matrix(lab: Lab) -> list[CheckSpec]:
    out: list[CheckSpec] = []
    for cluster in lab.clusters:
        out += internet_matrix(lab, cluster) + peering_matrix(lab, cluster)
    return out + hosts_matrix(lab)
