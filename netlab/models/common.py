"""What several network models share: per-node pod CIDR blocks and pod address allocation."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.lab import ipam, naming
from netlab.lab.model import NodeInfo, PodInfo, TunnelInfo, VpcRoute
from netlab.scenario.loader import Path_
from netlab.scenario.schema import Cluster


@dataclass
class Allocation:
    """A model's resolve-time decisions for one cluster."""

    nodes: list[NodeInfo]
    pods: list[PodInfo]
    mtu: int
    routes: list[VpcRoute] = field(default_factory=list)
    tunnel: TunnelInfo | None = None


def node_blocks(spec: Cluster, nodes: list[NodeInfo], path: Path_, ctx) -> list[NodeInfo]:
    """Give node i the i-th /pod_cidr_size block of the container CIDR; its first
    address is the pod gateway on that node."""
    if spec.pod_cidr_size < spec.container_cidr.prefixlen:
        raise ctx.error(path + ("pod_cidr_size",),
                        f"/{spec.pod_cidr_size} is larger than the container CIDR {spec.container_cidr}")
    available = 2 ** (spec.pod_cidr_size - spec.container_cidr.prefixlen)
    if len(nodes) > available:
        raise ctx.error(path + ("nodes",),
                        f"{len(nodes)} nodes need {len(nodes)} pod CIDRs of /{spec.pod_cidr_size}, but "
                        f"container_cidr {spec.container_cidr} holds only {available}; "
                        "use a larger container_cidr or a longer pod_cidr_size")
    out = []
    for node, block in zip(nodes, ipam.blocks(spec.container_cidr, spec.pod_cidr_size)):
        out.append(node.model_copy(update={"pod_cidr": block, "pod_gateway": block.network_address + 1}))
    return out


def pods_from_blocks(spec: Cluster, nodes: list[NodeInfo], path: Path_, ctx) -> list[PodInfo]:
    free = {n.name: ipam.block_hosts(n.pod_cidr) for n in nodes}
    pods = []
    for i, pod in enumerate(spec.pods):
        ip = next(free[pod.node], None)
        if ip is None:
            node = next(n for n in nodes if n.name == pod.node)
            raise ctx.error(path + ("pods", i, "node"),
                            f"node '{pod.node}' has no pod address left in {node.pod_cidr}; "
                            "use a shorter pod_cidr_size or spread pods over more nodes")
        pods.append(PodInfo(name=pod.name, cluster=spec.name, node=pod.node,
                            netns=naming.netns(ctx.lab, spec.name, pod.name), ip=ip,
                            host_ifname=naming.pod_host_ifname(spec.name, pod.name),
                            labels=pod.labels, ports=pod.ports))
    return pods
