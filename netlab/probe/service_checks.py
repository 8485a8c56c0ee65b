"""What a cluster's Services promise, as checks (pure).

For every Service with endpoints: a pod and a node reach the ClusterIP and, over several
connections, every endpoint answers (or, with ClientIP affinity, one endpoint answers all);
the ClusterIP is not reachable from outside the cluster; a VPC host reaches every node's
NodePort, masqueraded to the node under externalTrafficPolicy Cluster, with its own address
preserved under Local (where nodes without a local endpoint drop the traffic). A Service
without endpoints is rejected: the crafted SYN draws an ICMP port unreachable.
"""

from __future__ import annotations

import math
from ipaddress import IPv4Address

from netlab import models
from netlab.ingress.addon import is_controller
from netlab.lab.model import ClusterInfo, Lab, NodeInfo, PodInfo, ServiceInfo
from netlab.lab.services import selected, target_port
from netlab.probe.checks import CheckSpec

MAX_CONNECTIONS = 150
MAX_SPREAD_ENDPOINTS = 10  # beyond this, "every endpoint answers" would need too many connections


def _endpoints(info: ServiceInfo, cluster: ClusterInfo, port_index: int) -> list[PodInfo]:
    port = info.spec.ports[port_index]
    return [p for p in selected(info, cluster.pods) if target_port(port, p) is not None]


def _display(cluster: ClusterInfo, info: ServiceInfo) -> str:
    ns = "" if info.spec.namespace == "default" else f"{info.spec.namespace}/"
    return f"{cluster.name}/svc/{ns}{info.spec.name}"


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


def service_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    out: list[CheckSpec] = []
    for info in cluster.services:
        if is_controller(info):
            continue  # nginx answers it, not the agent: netlab.probe.lb_checks probes it over HTTP
        index = next((i for i, p in enumerate(info.spec.ports) if p.protocol == "TCP"), 0)
        port = info.spec.ports[index]
        proto = port.protocol.lower()
        eps = _endpoints(info, cluster, index)
        svc = _display(cluster, info)
        affinity = info.spec.sessionAffinity == "ClientIP"
        own = cluster.netns_pods()  # hostNetwork pods would call as their node
        clients = [p for p in own if p not in eps] or own
        base = dict(dst=svc, dst_ip=info.cluster_ip, port=port.port)

        if not eps:
            if clients:
                pod = clients[0]
                out.append(CheckSpec(name=f"Service without endpoints: {cluster.name}/{pod.name} → {svc}",
                                     src=f"{cluster.name}/{pod.name}", src_netns=pod.netns, src_ip=pod.ip,
                                     proto="syn", expect="blocked", blocked_by="reject", **base))
            continue

        if clients:
            pod = clients[0]
            node = cluster.node(pod.node)
            allowed = tuple(e for e in eps if info.spec.internalTrafficPolicy == "Cluster" or e.node == node.name)
            out.append(CheckSpec(
                name=f"pod→ClusterIP: {cluster.name}/{pod.name} → {svc}", src=f"{cluster.name}/{pod.name}",
                src_netns=pod.netns, src_ip=pod.ip, proto=proto, count=_connections(len(allowed)),
                allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in allowed),
                spread=_spread(affinity, len(allowed)),
                allowed_sources=models.get(cluster.model).service_sources(cluster, node, pod), **base))
        node = cluster.nodes[0]
        out.append(CheckSpec(
            name=f"node→ClusterIP: {cluster.name}/{node.name} → {svc}", src=f"{cluster.name}/{node.name}",
            src_netns=node.netns, src_ip=node.eth0.ip, proto=proto, count=_connections(len(eps)),
            allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in eps),
            spread=_spread(affinity, len(eps)), allowed_sources=_node_addresses(cluster, node), **base))
        for host in lab.hosts_in(lab.vpc_of_cluster(cluster))[:1]:
            out.append(CheckSpec(
                name=f"VPC host→ClusterIP (outside the cluster): {host.name} → {svc}", src=host.name,
                src_netns=host.netns, src_ip=host.eth0.ip, proto=proto, expect="blocked", **base))

        if info.spec.type == "ClusterIP" or not port.nodePort:
            continue
        local = info.spec.externalTrafficPolicy == "Local"
        for host in lab.hosts_in(lab.vpc_of_cluster(cluster))[:1]:
            for node in cluster.nodes:
                on_node = [e for e in eps if e.node == node.name]
                target = dict(dst=f"{cluster.name}/{node.name}", dst_ip=node.eth0.ip, port=port.nodePort)
                name = f"NodePort ({info.spec.externalTrafficPolicy}): {host.name} → {svc} via {node.name}"
                if local and not on_node:
                    out.append(CheckSpec(name=name, src=host.name, src_netns=host.netns, src_ip=host.eth0.ip,
                                         proto="syn" if proto == "tcp" else proto, expect="blocked",
                                         # iptables/nftables DROP it; IPVS forwards it to a remote
                                         # endpoint without SNAT (kube-proxy PR 97081), whose reply
                                         # comes back un-NATed and is dropped by the client.
                                         blocked_by="drop" if proto == "tcp" else None, **target))
                    continue
                allowed = on_node if local else eps
                out.append(CheckSpec(
                    name=name, src=host.name, src_netns=host.netns, src_ip=host.eth0.ip, proto=proto,
                    count=_connections(len(allowed)) if not affinity else 4,
                    allowed_backends=tuple(f"{cluster.name}/{e.name}" for e in allowed),
                    spread=_spread(affinity, len(allowed)),
                    allowed_sources=(host.eth0.ip,) if local else _node_addresses(cluster, node), **target))
    return out
