"""What several network models share: per-node pod CIDR blocks and pod address allocation."""

from __future__ import annotations

from netlab.lab import ipam, naming
from netlab.lab.model import NodeInfo, PodInfo
from netlab.lab.pods import PodRequest, expand
from netlab.scenario.types import Path_


def node_blocks(spec, nodes: list[NodeInfo], path: Path_, ctx) -> list[NodeInfo]:
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
    for node, block in zip(nodes, ipam.blocks(spec.container_cidr, spec.pod_cidr_size), strict=False):
        out.append(node.model_copy(update={"pod_cidr": block, "pod_gateway": block.network_address + 1}))
    return out


def pods_from_blocks(spec, nodes: list[NodeInfo], path: Path_, ctx) -> list[PodInfo]:
    """Every pod (pod sets expanded) gets the next free address of its node's block."""
    free = {n.name: ipam.block_hosts(n.pod_cidr) for n in nodes}
    pods = []
    for req in expand(spec, path, ctx):
        ip = next(free[req.node], None)
        if ip is None:
            node = next(n for n in nodes if n.name == req.node)
            raise ctx.error(req.path + ("node",),
                            f"node '{req.node}' has no pod address left in {node.pod_cidr}; "
                            "use a shorter pod_cidr_size or spread pods over more nodes")
        pods.append(pod_info(ctx.lab, spec.name, req, ip))
    return pods


def pod_info(lab: str, cluster: str, req: PodRequest, ip) -> PodInfo:
    return PodInfo(name=req.name, namespace=req.namespace, cluster=cluster, node=req.node,
                   netns=naming.netns(lab, cluster, req.name), ip=ip,
                   host_ifname=naming.pod_host_ifname(cluster, req.name),
                   labels=req.labels, ports=req.ports, set=req.set)
