"""What a cluster's Services promise, as checks (pure).

For every Service with endpoints: a pod and a node reach the ClusterIP and, over several
connections, every endpoint answers (or, with ClientIP affinity, one endpoint answers all);
a pod that is itself an endpoint reaches its own Service too, and when kube-proxy picks the
client as the endpoint it masquerades that hairpin connection to the node's address on the
pod's side (KUBE-SEP's `-s <endpoint> -j KUBE-MARK-MASQ`, the nft endpoint chain's
`ip saddr <endpoint> jump mark-for-masquerade`, IPVS mode's KUBE-LOOP-BACK set), so that is
the source expected exactly then; the ClusterIP is unreachable from outside the cluster (the
VPC has no route to the Service CIDR); a VPC host reaches every node's NodePort, masqueraded
to the node under externalTrafficPolicy Cluster, with its own address preserved under Local
(where nodes without a local endpoint drop the traffic). A Service without endpoints is
rejected: kube-proxy's REJECT answers the crafted SYN with ICMP port unreachable.
"""

from __future__ import annotations

import math
from ipaddress import IPv4Address

from netlab import models
from netlab.ingress.addon import is_controller
from netlab.lab import refs
from netlab.lab.model import ClusterInfo, Lab, NodeInfo, PodInfo
from netlab.probe.checks import CheckSpec, from_outside

MAX_CONNECTIONS = 150
MAX_SPREAD_ENDPOINTS = 10  # beyond this, "every endpoint answers" would need too many connections


def _connections(n: int) -> int:
    """Enough connections that a uniform random choice among n endpoints leaves one out with
    probability below one in a million: n·(1 − 1/n)^c < 1e-6."""
    if n <= 1:
        return 1
    return min(MAX_CONNECTIONS, math.ceil(math.log(1e-6 / n) / math.log(1 - 1 / n)))


def _spread(affinity: bool, n: int) -> str | None:
    if affinity:
        return "one"
    return "all" if n <= MAX_SPREAD_ENDPOINTS else None


def _node_addresses(cluster: ClusterInfo, node: NodeInfo) -> tuple[IPv4Address, ...]:
    """Addresses MASQUERADE may pick on the node: the underlay IP or a pod-side address."""
    return models.get(cluster.model).node_addresses(cluster, node)


def _pod_to_cluster_ip(cluster: ClusterInfo, name: str, pod: PodInfo, eps: list[PodInfo], allowed_filter,
                       affinity: bool, base: dict) -> CheckSpec:
    node = cluster.node(pod.node)
    model = models.get(cluster.model)
    allowed = tuple(e for e in eps if allowed_filter(e, node))
    hairpin = None
    if pod in allowed:
        hairpin = (f"{cluster.name}/{pod.name}", (model.hairpin_source(cluster, node),))
    return CheckSpec(
        name=name, src=f"{cluster.name}/{pod.name}", src_netns=pod.netns, src_ip=pod.ip,
        count=_connections(len(allowed)), allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in allowed),
        spread=_spread(affinity, len(allowed)), allowed_sources=model.service_sources(cluster, node, pod),
        hairpin=hairpin, **base)


def service_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    out: list[CheckSpec] = []
    for info in cluster.services:
        if is_controller(info):
            continue  # nginx answers it, not the agent: netlab.probe.lb_checks probes it over HTTP
        index = next((i for i, p in enumerate(info.spec.ports) if p.protocol == "TCP"), 0)
        port = info.spec.ports[index]
        proto = port.protocol.lower()
        eps = refs.endpoints(info, cluster, port)
        svc = refs.service_name(cluster, info)
        affinity = info.spec.sessionAffinity == "ClientIP"
        own = cluster.netns_pods()  # hostNetwork pods would call as their node
        clients = [p for p in own if p not in eps] or own
        base = dict(dst=svc, dst_ip=info.cluster_ip, port=port.port, cluster=cluster.name,
                    target_ips=(info.cluster_ip,) + tuple(e.ip for e in eps))

        if not eps:
            if clients:
                pod = clients[0]
                out.append(CheckSpec(name=f"Service without endpoints: {cluster.name}/{pod.name} → {svc}",
                                     src=f"{cluster.name}/{pod.name}", src_netns=pod.netns, src_ip=pod.ip,
                                     proto="syn" if proto == "tcp" else proto, expect="rejected",
                                     rule_rejects=True, **base))
            continue

        def itp(e: PodInfo, node: NodeInfo) -> bool:
            return info.spec.internalTrafficPolicy == "Cluster" or e.node == node.name

        if clients:
            pod = clients[0]
            out.append(_pod_to_cluster_ip(cluster, f"pod→ClusterIP: {cluster.name}/{pod.name} → {svc}", pod,
                                          eps, itp, affinity, dict(base, proto=proto)))
            if pod not in eps:
                # A client that is also an endpoint: the hairpin case, masqueraded.
                ep = eps[0]
                out.append(_pod_to_cluster_ip(
                    cluster, f"pod→own Service (hairpin): {cluster.name}/{ep.name} → {svc}", ep, eps, itp,
                    affinity, dict(base, proto=proto, kind="pod→own Service")))
        node = cluster.nodes[0]
        out.append(CheckSpec(
            name=f"node→ClusterIP: {cluster.name}/{node.name} → {svc}", src=f"{cluster.name}/{node.name}",
            src_netns=node.netns, src_ip=node.eth0.ip, proto=proto, count=_connections(len(eps)),
            allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in eps),
            spread=_spread(affinity, len(eps)), allowed_sources=_node_addresses(cluster, node), **base))
        for host in lab.hosts_in(lab.vpc_of_cluster(cluster))[:1]:
            out.append(CheckSpec(
                name=f"VPC host→ClusterIP (outside the cluster): {host.name} → {svc}", src=host.name,
                src_netns=host.netns, src_ip=host.eth0.ip, proto=proto, kind="VPC host→ClusterIP",
                expect=from_outside(lab.vpc_of_cluster(cluster), info.cluster_ip), **base))

        if info.spec.type == "ClusterIP" or not port.nodePort:
            continue
        local = info.spec.externalTrafficPolicy == "Local"
        for host in lab.hosts_in(lab.vpc_of_cluster(cluster))[:1]:
            for node in cluster.nodes:
                on_node = [e for e in eps if e.node == node.name]
                allowed = on_node if local else eps
                target = dict(dst=f"{cluster.name}/{node.name}", dst_ip=node.eth0.ip, port=port.nodePort,
                              cluster=cluster.name, target_ips=(node.eth0.ip,) + tuple(e.ip for e in allowed))
                name = f"NodePort ({info.spec.externalTrafficPolicy}): {host.name} → {svc} via {node.name}"
                if local and not on_node:
                    out.append(CheckSpec(name=name, src=host.name, src_netns=host.netns, src_ip=host.eth0.ip,
                                         proto="syn" if proto == "tcp" else proto, expect="dropped",
                                         # iptables/nftables DROP it; IPVS forwards it to a remote
                                         # endpoint without SNAT (kube-proxy PR 97081), whose reply
                                         # comes back un-NATed and is dropped by the client.
                                         **target))
                    continue
                out.append(CheckSpec(
                    name=name, src=host.name, src_netns=host.netns, src_ip=host.eth0.ip, proto=proto,
                    count=_connections(len(allowed)) if not affinity else 4,
                    allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in allowed),
                    spread=_spread(affinity, len(allowed)),
                    allowed_sources=(host.eth0.ip,) if local else _node_addresses(cluster, node), **target))
    return out
