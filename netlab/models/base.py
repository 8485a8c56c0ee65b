"""The network-model interface: what a container network model must provide, and defaults.

A model is one module under `netlab/models/` holding one subclass of `NetworkModel` and
registered by name in `netlab.models` (the one place that lists them). The interface is
what the rest of netlab needs from a model, nothing more:

- the scenario: its own cluster section (`Cluster`, a subclass of `ClusterBase` with
  `model: Literal[<name>]` and the model's fields);
- resolve: `validate` (the model's own refusals, before the generic ones), `allocate` (node
  pod CIDRs, pod addresses, the VPC routes it needs, the pod MTU, its own resolved data as
  `ModelInfo` subclasses on the cluster, nodes and pods);
- plan: `ops` (wire nodes and pods), `pod_ops`/`pod_remove_ops`/`new_pod`/`pod_address`
  (`netlab scale` adds and removes pods on a running lab);
- checks: the traits of what the model promises (`ENCAP`, `VPC_HOST_TO_POD`, `POD_UPLINK`,
  and the source addresses a far end sees: `node_source`, `egress_source`, `source_towards`,
  `node_addresses`, `service_sources`);
- security groups: `node_group_rules` (the model's rules of the default node group);
- exec, trace and show: `exec_argv` (a user's command inside a node, its tools pointed at
  the node's own daemons), `trace_*` (the switch and tunnel hops of `netlab trace`) and `show`
  (the commands that display a node's model-specific datapath).

Defaults follow the common case (pods in per-node blocks of the container CIDR, one routed
veth each); a model overrides what differs, as containerlab's kinds embed a default node.
hostNetwork pods are not wired by any model: they live in their node's namespace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, ClassVar

from netlab.lab import ipam
from netlab.plan.ops import DelNetns, Op

if TYPE_CHECKING:
    from netlab.lab.model import ClusterInfo, Lab, NodeInfo, PodInfo, VpcInfo, VpcRoute
    from netlab.lab.pods import PodRequest
    from netlab.scenario.security_groups import Rule
    from netlab.scenario.types import ClusterBase, Path_


@dataclass
class Allocation:
    """A model's resolve-time decisions for one cluster."""

    nodes: list[NodeInfo]
    pods: list[PodInfo]
    mtu: int
    routes: list[VpcRoute] = field(default_factory=list)
    network: object | None = None  # the model's ModelInfo for the cluster, if it has one
    container_cidr: object | None = None  # where pods take addresses (default: the section's)
    security_groups: list = field(default_factory=list)  # groups the model creates (SecurityGroup)


@dataclass(frozen=True)
class SwitchQuery:
    """`netlab trace` asking a node's virtual switch where a packet goes: `argv` runs from the
    host (e.g. `ovs-appctl -t <node's socket> ofproto/trace br-int <flow>`)."""

    cluster: str
    node: str
    in_port: str
    argv: tuple[str, ...]
    packet: object = None  # the headers asked about (netlab.trace.nftrace.Packet)


@dataclass(frozen=True)
class ShowCommand:
    """A read-only command whose output `netlab show` prints under `title`; it runs inside
    `netns` (None: from the host, e.g. an OVS client talking to a node's own socket)."""

    title: str
    argv: tuple[str, ...]
    netns: str | None = None


class NetworkModel(ABC):
    name: ClassVar[str]
    Cluster: ClassVar[type[ClusterBase]]  # the model's section of a scenario's cluster
    ENCAP: ClassVar[str]  # what crosses the underlay between nodes: "none" | "vxlan"
    VPC_HOST_TO_POD: ClassVar[str]  # "reach" | "blocked": can a VPC host reach a pod IP?
    POD_UPLINK: ClassVar[str] = "eth0"  # the node interface a pod's own traffic leaves by

    # -- resolve ------------------------------------------------------------------------
    def validate(self, spec: ClusterBase, path: Path_, ctx) -> None:
        """Refuse what this model cannot build, before the generic checks (CIDR overlaps)
        run: located errors via `ctx.error`. Nothing by default."""

    @abstractmethod
    def allocate(self, spec: ClusterBase, nodes: list[NodeInfo], path: Path_, ctx) -> Allocation:
        """Addresses and routes for the cluster's nodes and pods; errors via `ctx.error`."""

    # -- plan ---------------------------------------------------------------------------
    @abstractmethod
    def ops(self, lab: Lab, cluster: ClusterInfo) -> list[Op]:
        """Everything that wires the cluster's nodes and pods (VPC attachment included)."""

    @abstractmethod
    def pod_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        """One pod on a running node (used by `ops` and by `netlab scale`)."""

    def pod_remove_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        """Removing the pod's namespace takes its interfaces, and their routes, with it."""
        return [DelNetns(pod.netns)]

    def pod_address(self, cluster: ClusterInfo, node: NodeInfo, used: set) -> IPv4Address | None:
        """A free address for a new pod on `node` (`netlab scale`): the first of the node's
        pod block that no pod holds."""
        return next((ip for ip in ipam.block_hosts(node.pod_cidr) if ip not in used), None)

    def new_pod(self, lab: Lab, cluster: ClusterInfo, req: PodRequest, used: set) -> PodInfo | None:
        """A pod `netlab scale` adds (None: no address left). `used`: every address of the lab."""
        from netlab.models.common import pod_info

        node = cluster.node(req.node)
        if req.host_network:
            return pod_info(lab.name, cluster.name, req, None, node)
        ip = self.pod_address(cluster, node, used)
        return None if ip is None else pod_info(lab.name, cluster.name, req, ip)

    # -- traits the checks use ------------------------------------------------------------
    @abstractmethod
    def node_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a pod sees when a node's own stack connects to it."""

    @abstractmethod
    def egress_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a VPC host sees for a pod's traffic."""

    def source_towards(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, dst: IPv4Address) -> IPv4Address:
        """The source a pod's packet to `dst` (outside the container CIDR: a VPC host, a peer
        VPC's host, the internet) carries when it leaves the node; the cloud's EIPs and NAT
        gateways translate what leaves the VPC from there. Default: `egress_source`, whatever
        the destination (a model that masquerades per destination overrides it)."""
        return self.egress_source(cluster, node, pod)

    def node_addresses(self, cluster: ClusterInfo, node: NodeInfo) -> tuple[IPv4Address, ...]:
        """The node's own addresses a pod may see after SNAT (Services): the node IP, or the
        pod-side address MASQUERADE picks when the packet leaves towards a pod."""
        return (node.eth0.ip, node.pod_gateway) if node.pod_gateway else (node.eth0.ip,)

    def service_sources(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> tuple[IPv4Address, ...]:
        """The sources an endpoint may see when `pod` (on `node`) calls a ClusterIP: the
        pod's own address when its traffic crosses kube-proxy without SNAT."""
        return (pod.ip,)

    def hairpin_source(self, cluster: ClusterInfo, node: NodeInfo) -> IPv4Address:
        """The source a pod sees when kube-proxy sends its connection to a Service back to the
        pod itself (masqueraded: MASQUERADE takes the address of the device towards the pod,
        the node's pod gateway address in the vpc and tunnel models: the node-side veth, gw0,
        cni0)."""
        return node.pod_gateway or node.eth0.ip

    # -- explanations (a check's `why`) ----------------------------------------------------
    def explain_same_node(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, from_node: bool) -> str:
        """How a node delivers to its own pods, from another pod or from its own stack."""
        return f"same node: {node.name} routes {pod.ip}/32 to {pod.host_ifname}; nothing crosses eth0"

    def explain_across_nodes(self, cluster: ClusterInfo, src_node: NodeInfo, node: NodeInfo, pod: PodInfo,
                             from_node: bool) -> str | None:
        """How a packet from a pod (or the stack) of `src_node` reaches `pod` on another node;
        None: by the VPC's route table, which the caller names."""
        return None

    def encap_flow(self, cluster: ClusterInfo) -> tuple[str, int] | None:
        """(protocol, destination port) of what carries pod traffic between nodes on the
        underlay, as the VPC's security groups see it; None: the pods' own packets."""
        return None

    # -- security groups ------------------------------------------------------------------
    def node_group_rules(self, cluster: ClusterInfo, vpc: VpcInfo, group: str) -> list[Rule]:
        """The inbound rules of the default node security group the service creates for a
        cluster of this model (`group` is its name), beyond what every model's has (the
        NodePort range from anywhere, everything from the group's own members:
        `netlab.cloud.secgroup.default_node_group`). Default: none."""
        return []

    # -- exec -----------------------------------------------------------------------------
    def exec_argv(self, lab: Lab, cluster: ClusterInfo, node: NodeInfo, argv: list[str]) -> list[str]:
        """The command `netlab exec` runs inside a node for a user's `argv` (a model whose
        node runs daemons of its own points their clients at them)."""
        return argv

    # -- trace ----------------------------------------------------------------------------
    def trace_into_switch(self, lab: Lab, cluster: ClusterInfo, netns: str, ifname: str,
                          packet) -> SwitchQuery | None:
        """The switch query for a packet that leaves `netns` by `ifname` into a node's virtual
        switch (a model without one: None)."""
        return None

    def trace_switch_result(self, lab: Lab, cluster: ClusterInfo, query: SwitchQuery,
                            result) -> tuple[str | None, dict | None, SwitchQuery | None]:
        """What a switch's answer (`netlab.trace.ovstrace.OvsTrace`) means: the name of the
        port it leaves by, the underlay hop if it is encapsulated, and the query for the
        switch at the tunnel's far end."""
        return None, None, None

    def trace_encap(self, lab: Lab, cluster: ClusterInfo, netns: str, ifname: str,
                    gateway: str | None) -> dict | None:
        """The underlay hop when a node stack sends into a kernel tunnel device (`ifname`),
        towards `gateway` (the route's next hop)."""
        return None

    # -- show -----------------------------------------------------------------------------
    def show(self, lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[ShowCommand]:
        """What `netlab show` adds for a node of this model (beyond addresses, routes and
        kube-proxy's entry points, which every node has)."""
        return []
