"""The VPC network model: each node owns a pod CIDR and the VPC route table carries one
route per node (pod CIDR via node IP). No encapsulation: pod packets cross the VPC as they
are, so pods are reachable from anywhere in the VPC and keep their own source address.

On a node, each pod is a routed veth: the pod holds its address as /32 with a default route
via the node's pod gateway address (carried by the node-side veth, so the pod's ARP for it
is answered), and the node routes each local pod address to its veth. All pod traffic thus
crosses the node's IP stack, where kube-proxy's rules see it.

Masquerade, as the service does it: pod traffic keeps the pod IP toward the container CIDR
and the cluster's non-masquerade CIDRs (`non_masquerade_cidrs`, by default the private
ranges 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), and is SNATed to the node IP toward
anything else (the internet: then the node's EIP or a NAT gateway takes it on). Each node
holds the rule as an iptables chain NETLAB-VPC-SNAT in POSTROUTING, as ip-masq-agent does.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from pydantic import Field

from netlab.cloud.vpc import DEFAULT, attach_ops, no_icmp_ratelimit
from netlab.lab.model import ClusterInfo, Lab, ModelInfo, NodeInfo, PodInfo, VpcRoute
from netlab.models.base import Allocation, NetworkModel
from netlab.models.common import node_blocks, pods_from_blocks
from netlab.plan.ops import AddAddress, AddNetns, AddRoute, AddVeth, IptablesRestore, Op, SetLink, Sysctl
from netlab.scenario.types import Cidr, ClusterBase, NodeCidrFields

# The service's default: the private ranges (RFC 1918).
NON_MASQUERADE_DEFAULT = [IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")]


class Cluster(ClusterBase, NodeCidrFields):
    """A VPC-network cluster: the container CIDR is cut into one `pod_cidr_size` block per
    node, and the VPC route table routes each block to its node."""

    model: Literal["vpc"]
    non_masquerade_cidrs: list[Cidr] = Field(
        default_factory=lambda: list(NON_MASQUERADE_DEFAULT),
        description="destinations pods reach with their own IP; anything else is SNATed to the node IP")


class VpcNetwork(ModelInfo):
    """The vpc model's decisions for a cluster: where pods keep their own address."""

    type: Literal["vpc"] = "vpc"
    non_masquerade_cidrs: list[IPv4Network]


class VpcModel(NetworkModel):
    name = "vpc"
    Cluster = Cluster
    ENCAP = "none"  # what crosses the underlay between nodes
    VPC_HOST_TO_POD = "reach"  # the VPC route table routes each node's pod CIDR

    def node_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a pod sees when a node connects to it (local pods: the route's src)."""
        return node.eth0.ip

    def egress_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a VPC host sees for a pod's traffic with the default non-masquerade
        CIDRs: the pod's own address (no SNAT)."""
        return pod.ip

    def source_towards(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, dst: IPv4Address) -> IPv4Address:
        """The pod IP toward the container CIDR and the non-masquerade CIDRs, else the node IP."""
        keep = [cluster.container_cidr] + list(cluster.network.non_masquerade_cidrs)
        return pod.ip if any(dst in net for net in keep) else node.eth0.ip

    def node_group_rules(self, cluster: ClusterInfo, vpc, group: str) -> list:
        """Everything from the VPC and from the container CIDR: pods reach nodes, and each
        other across nodes, with their own addresses (the VPC routes them to a node's port)."""
        from netlab.scenario.security_groups import Rule

        return [Rule(protocol="all", remote_ip_prefix=vpc.cidr, description="the VPC"),
                Rule(protocol="all", remote_ip_prefix=cluster.container_cidr, description="the container CIDR")]

    def allocate(self, spec, nodes: list[NodeInfo], path, ctx) -> Allocation:
        nodes = node_blocks(spec, nodes, path, ctx)
        routes = [VpcRoute(destination=n.pod_cidr, nexthop=n.eth0.ip, owner=f"{spec.name}/{n.name}")
                  for n in nodes]
        return Allocation(nodes=nodes, pods=pods_from_blocks(spec, nodes, path, ctx),
                          mtu=ctx.underlay_mtu, routes=routes,
                          network=VpcNetwork(non_masquerade_cidrs=spec.non_masquerade_cidrs))

    def ops(self, lab: Lab, cluster: ClusterInfo) -> list[Op]:
        out: list[Op] = []
        for node in cluster.nodes:
            out += [AddNetns(node.netns), Sysctl(node.netns, "net.ipv4.ip_forward", "1"),
                    no_icmp_ratelimit(node.netns)]
            out += attach_ops(lab, node.netns, node.eth0)
        for pod in cluster.netns_pods():
            out += self.pod_ops(lab, cluster, pod)
        out += [masquerade(lab, cluster, node) for node in cluster.nodes]
        return out

    def pod_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        """One pod: its namespace and routed veth (also used by `netlab scale`)."""
        node = cluster.node(pod.node)
        gw = node.pod_gateway
        return [
            AddNetns(pod.netns),
            AddVeth(node.netns, pod.host_ifname, pod.netns, "eth0", cluster.mtu),
            SetLink(node.netns, pod.host_ifname),
            AddAddress(node.netns, pod.host_ifname, IPv4Interface(f"{gw}/32")),
            AddRoute(node.netns, IPv4Network(f"{pod.ip}/32"), dev=pod.host_ifname, scope_link=True,
                     src=node.eth0.ip),
            SetLink(pod.netns, "lo"),
            SetLink(pod.netns, "eth0"),
            AddAddress(pod.netns, "eth0", IPv4Interface(f"{pod.ip}/32")),
            AddRoute(pod.netns, IPv4Network(f"{gw}/32"), dev="eth0", scope_link=True),
            AddRoute(pod.netns, DEFAULT, via=gw, dev="eth0"),
        ]


def masquerade(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> IptablesRestore:
    """The node's pod-egress SNAT: RETURN for what keeps the pod IP, MASQUERADE the rest."""
    cidr = cluster.container_cidr
    lines = ["*nat", ":NETLAB-VPC-SNAT - [0:0]",
             '-A POSTROUTING -m comment --comment "netlab: pod traffic leaving the cluster" -j NETLAB-VPC-SNAT',
             f"-A NETLAB-VPC-SNAT ! -s {cidr} -j RETURN",
             f'-A NETLAB-VPC-SNAT -d {cidr} -m comment --comment "pod to pod" -j RETURN']
    lines += [f'-A NETLAB-VPC-SNAT -d {net} -m comment --comment "non-masquerade CIDR" -j RETURN'
              for net in cluster.network.non_masquerade_cidrs]
    lines += [f'-A NETLAB-VPC-SNAT -m comment --comment "netlab {lab.name}: to the node IP" -j MASQUERADE',
              "COMMIT"]
    return IptablesRestore(node.netns, "\n".join(lines) + "\n",
                           purpose="pod egress SNAT beyond the non-masquerade CIDRs")


MODEL = VpcModel()
