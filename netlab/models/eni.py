"""Cloud Native Network 2.0 (`model: eni`): pods hold VPC addresses on sub-interfaces of
their node's elastic network interface. No tunnel, no per-node CIDR, no VPC route, no NAT:
the VPC, its hosts and its security groups see pods as first-class members.

A node has two ENIs, as the service's ECS nodes do: `eth0`, the primary ENI in its own
subnet (the node IP), and `eth1`, the extended ENI in the cluster's `pod_subnet`, which
carries no address of the node and serves as the trunk the pods' sub-ENIs hang off. Each
pod's sub-ENI is a sub-interface of `eth1` that lives in the pod's namespace as its `eth0`,
with an address from the pod subnet, its own MAC and the subnet gateway as default route. It is
created straight into the pod's namespace under a temporary name and renamed there, as the
CNI macvlan/ipvlan/vlan plugins do (creating it on the node and moving it costs an RCU
grace period per pod).

Sub-ENI kinds (`sub_eni:`), all of them sending every frame to the VPC so that a pod's
security groups apply even between two pods on one node:

- `macvlan` (the default here): mode `vepa`, so sibling pods reach each other through the
  VPC's bridge, whose port for `eth1` has `hairpin on` to send such frames back;
- `ipvlan`: mode `l2 vepa` (one MAC, the trunk's, for every pod on the node), same port;
- `vlan`: 802.1Q, one VLAN per pod on the trunk, as the service itself does: the VPC side
  of the trunk is not bridged, each VLAN has its own sub-port (`v-<cluster>-<pod>`) on the
  pod subnet's bridge, which is what "the VPC maps the VLAN to the pod" means here.

ipvlan and 802.1Q need kernel modules the development kernels lack (the kernel tier).

Services. A sub-ENI's packets go from the pod straight to the VPC, never through the
node's IP stack where kube-proxy's rules live. So every pod also gets a veth pair to its
node (`veth0` in the pod, `veth-<pod>` on the node, no address on either end, as the
unnumbered point-to-point link of lyft/cni-ipvlan-vpc-k8s, the reference ipvlan-on-ENI
CNI): the pod routes its node IP and the Service CIDR over it, the node routes the pod's
address back over it (`/32`, source the node IP). ClusterIP and NodePort traffic of a pod
thus enters the node where kube-proxy translates it like any other. So does what it opens
to its Services' externalIPs and load-balancer addresses, which kube-proxy short-circuits on
the node (not those published with ipMode Proxy: they go through the ELB): policy rules
`to ADDRESS ipproto P dport PORT lookup 100` send exactly the Service's listeners over the
veth, while the pod's answers to that same address (a dedicated ELB's health checks, its
passthrough connections) leave by the sub-ENI they came in by. node→pod and NodePort
traffic to a local endpoint leave the node over the same veth.

The catch is the reply. After kube-proxy's DNAT, the endpoint (another pod, maybe on
another node) would answer the client pod's VPC address directly, through the VPC and the
client's sub-ENI, and the client's node would never see the reply it must un-NAT. Real ENI
CNIs either hairpin the translated packet back through the client pod (Lyft: policy
routing `iif veth` back into the pod, which forwards it on with its own address) or
source-NAT it to the node. The hairpin keeps the client address only where the DNAT happens
in PREROUTING (iptables, nftables); kube-proxy's IPVS mode forwards from LOCAL_IN with a
route cached per real server, which no policy rule can steer per client. So this model
SNATs, the same way in every proxy mode: a packet that enters the node from a pod's veth
and leaves it forwarded (necessarily a Service's, since nothing else is routed over the
veth) is marked in `prerouting` and source-NATed to the node IP in `postrouting` (table
`ip netlab-eni` on every node). Replies then come back to the node, conntrack sees both
directions and reverses both translations. An endpoint therefore sees the client's node
IP, where the other models show the client pod's address (`service_sources`).

Limits the service enforces (resolve refuses, located): pods per node = min(`max_pods`,
the node's `sub_eni_quota`; hostNetwork pods count against max_pods only); every pod takes
an address of the pod subnet, so its free addresses bound the pod count; the Service CIDR
may overlap no VPC subnet; externalTrafficPolicy Local only for hostNetwork backends (the
client address survives only on the node's own stack).

Security groups: every pod is bound to the groups its cluster's `SecurityGroup` objects
give it, or to the cluster's default ENI group (`<cluster>-cce-eni`: everything from its
own members and from the VPC CIDR), enforced at the VPC side of its port
(`netlab.cloud.secgroup`). Traffic that stays on the node (node→own pod, Services to a local
endpoint) crosses the veth path, not the VPC, and meets no group.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from pydantic import Field

from netlab.cloud import secgroup
from netlab.cloud.vpc import DEFAULT, attach_ops, no_icmp_ratelimit
from netlab.errors import UserError
from netlab.lab import ipam, naming
from netlab.lab.model import ClusterInfo, Lab, ModelInfo, NodeInfo, PodInfo
from netlab.lab.pods import PodRequest, expand
from netlab.models.base import Allocation, NetworkModel, ShowCommand
from netlab.models.common import mac_of, pod_info
from netlab.plan.ops import (AddAddress, AddLink, AddNetns, AddRoute, AddRule, AddVeth, DelLink, DelNetns,
                             NftApply, Op, SetBridgePort, SetLink, Sysctl)
from netlab.scenario import types
from netlab.scenario.security_groups import Rule, SecurityGroup, SecurityGroupBinding

TRUNK = "eth1"  # the node's extended ENI, in the pod subnet
POD_VETH = "veth0"  # the pod's end of its veth to the node
SUB_ENI_MODES = {"macvlan": "vepa", "ipvlan": "l2 vepa", "vlan": None}
KERNEL_FEATURE = {"macvlan": ("macvlan", "macvlan"), "ipvlan": ("ipvlan", "ipvlan"), "vlan": ("vlan", "8021q")}
SERVICE_MARK = 0x2000  # a packet from a pod's veth (kube-proxy uses 0x4000 and 0x8000)
VETH_TABLE, VETH_RULE_PRIORITY = 100, 1000  # the pod's route to its node for Service listeners
NODE_TABLE = "netlab-eni"
DEFAULT_SUB_ENI_QUOTA = 16  # a small flavour's sub-ENIs (the service's figure)
DEFAULT_MAX_PODS = 110  # the kubelet's default maxPods


class Node(types.Node):
    sub_eni_quota: int = Field(default=DEFAULT_SUB_ENI_QUOTA, ge=1, le=4094,
                               description="sub-ENIs the node's flavour can hold (pods per node = "
                                           "min(max_pods, sub_eni_quota))")


class Cluster(types.ClusterBase):
    """A Cloud Native Network 2.0 cluster: pods on sub-ENIs with pod-subnet addresses."""

    model: Literal["eni"]
    pod_subnet: types.Name = Field(description="the VPC subnet pods take their addresses from")
    sub_eni: Literal["macvlan", "ipvlan", "vlan"] = Field(
        default="macvlan", description="the sub-interface kind: macvlan, ipvlan, or vlan (802.1Q, one "
                                       "VLAN per pod on the trunk, as the service does)")
    max_pods: int = Field(default=DEFAULT_MAX_PODS, ge=1, le=1000, description="the kubelet's maxPods")
    nodes: list[Node] = Field(min_length=1)
    securityGroups: list[SecurityGroupBinding] = Field(
        default_factory=list, description="SecurityGroup objects (crd.yangtse.cni/v1): pods by label → groups")


class EniNetwork(ModelInfo):
    type: Literal["eni"] = "eni"
    pod_subnet: str
    sub_eni: Literal["macvlan", "ipvlan", "vlan"]
    max_pods: int
    default_group: str
    bindings: list[SecurityGroupBinding] = Field(default_factory=list)


class EniNode(ModelInfo):
    type: Literal["eni-node"] = "eni-node"
    trunk_port: str  # the VPC side of the node's eth1
    sub_eni_quota: int


class EniPod(ModelInfo):
    type: Literal["eni-pod"] = "eni-pod"
    mac: str | None  # None: ipvlan, the trunk's MAC
    vlan_id: int | None = None  # vlan: the pod's VLAN on the trunk
    vpc_port: str | None = None  # vlan: the VLAN's sub-port on the pod subnet's bridge
    security_groups: list[str]


def default_group(cluster: str, vpc_cidr: IPv4Network) -> SecurityGroup:
    """The group the service creates for a cluster's pods: all from itself and the VPC."""
    name = secgroup.created_name(cluster, "eni")
    return SecurityGroup(name=name, description="the service's default group for the cluster's pods",
                         inbound=[Rule(protocol="all", remote_group=name),
                                  Rule(protocol="all", remote_ip_prefix=vpc_cidr)])


def pod_limit(spec_max_pods: int, quota: int) -> int:
    return min(spec_max_pods, quota)


def trunk_port(cluster: str, node: str) -> str:
    return naming.ifname("t-", f"{cluster}-{node}", unique_by=f"{cluster}/{node}/trunk")


class EniModel(NetworkModel):
    name = "eni"
    Cluster = Cluster
    ENCAP = "none"  # what crosses the underlay between nodes
    VPC_HOST_TO_POD = "reach"  # pods hold VPC addresses
    POD_UPLINK = TRUNK  # a pod's own traffic leaves its node by the trunk

    # -- resolve -------------------------------------------------------------------------
    def validate(self, spec: Cluster, path, ctx) -> None:
        sn = ctx.subnet(spec.pod_subnet)
        if sn is None:
            raise ctx.error(path + ("pod_subnet",), f"unknown subnet '{spec.pod_subnet}'; subnets: "
                            + ", ".join(s.name for v in ctx.vpcs for s in v.subnets))
        vpc = next(v for v in ctx.vpcs if sn in v.subnets)
        for ni, node in enumerate(spec.nodes):
            node_subnet = node.subnet or ctx.vpcs[0].subnets[0].name
            if ctx.subnet(node_subnet) is not None and ctx.subnet(node_subnet) not in vpc.subnets:
                raise ctx.error(path + ("nodes", ni, "subnet"),
                                f"node '{node.name}' is in another VPC than the pod subnet '{sn.name}' "
                                f"(VPC '{vpc.name}'); a node's ENIs are in one VPC")
        feature, module = KERNEL_FEATURE[spec.sub_eni]
        if ctx.check_host and feature not in ctx.features:
            raise ctx.error(path + ("sub_eni",),
                            f"sub_eni: {spec.sub_eni} needs the {module} kernel module, which this kernel lacks "
                            f"(see `netlab doctor`); {'use macvlan here, or ' if spec.sub_eni != 'macvlan' else ''}"
                            "run the lab in the kernel tier (a VM with Debian's stock kernel: `make test-kernel`, "
                            "Vagrant)")
        for v in ctx.vpcs:
            for other in v.subnets:
                if spec.service_cidr.overlaps(other.cidr):
                    raise ctx.error(path + ("service_cidr",),
                                    f"Service CIDR {spec.service_cidr} overlaps VPC subnet '{other.name}' "
                                    f"({other.cidr}); in the eni model pods hold VPC addresses, so the Service "
                                    "CIDR may overlap no VPC subnet")
        self._validate_local_traffic(spec, path, ctx)

    @staticmethod
    def _validate_local_traffic(spec: Cluster, path, ctx) -> None:
        """externalTrafficPolicy Local keeps the client address only for endpoints on the
        node's own stack: the service accepts it for hostNetwork backends only."""
        for si, svc in enumerate(spec.services):
            if svc.externalTrafficPolicy != "Local" or not svc.selector:
                continue
            for pi, pod in enumerate(spec.pods):
                if (pod.namespace == svc.namespace and not pod.hostNetwork
                        and all(pod.labels.get(k) == v for k, v in svc.selector.items())):
                    raise ctx.error(path + ("services", si, "externalTrafficPolicy"),
                                    f"externalTrafficPolicy Local needs hostNetwork backends in the eni model, "
                                    f"but it selects pod '{pod.name}' (line {ctx.source.line(path + ('pods', pi))}), "
                                    "which has a sub-ENI; use Cluster, or hostNetwork: true")

    def allocate(self, spec: Cluster, nodes: list[NodeInfo], path, ctx) -> Allocation:
        sn = ctx.subnet(spec.pod_subnet)
        vpc = next(v for v in ctx.vpcs if sn in v.subnets)
        group = default_group(spec.name, vpc.cidr)
        known = set(ctx.security_groups) | {group.name}
        quotas = {n.name: n.sub_eni_quota for n in spec.nodes}
        nodes = [n.model_copy(update={"network": EniNode(trunk_port=trunk_port(spec.name, n.name),
                                                         sub_eni_quota=quotas[n.name])}) for n in nodes]
        by_name = {n.name: n for n in nodes}
        subenis: dict[str, int] = {n.name: 0 for n in nodes}
        all_pods: dict[str, int] = {n.name: 0 for n in nodes}
        pods = []
        for req in expand(spec, path, ctx):
            all_pods[req.node] += 1
            if all_pods[req.node] > spec.max_pods:
                raise ctx.error(req.path + ("node",), f"node '{req.node}' would run {all_pods[req.node]} pods, "
                                                      f"above max_pods {spec.max_pods}; spread pods over more nodes")
            if req.host_network:
                pods.append(pod_info(ctx.lab, spec.name, req, None, by_name[req.node]))
                continue
            subenis[req.node] += 1
            limit = pod_limit(spec.max_pods, quotas[req.node])
            if subenis[req.node] > limit:
                raise ctx.error(req.path + ("node",),
                                f"node '{req.node}' would hold {subenis[req.node]} sub-ENIs, but pods per node = "
                                f"min(max_pods {spec.max_pods}, sub_eni_quota {quotas[req.node]}) = {limit}; "
                                "spread pods over more nodes or raise the node's sub_eni_quota")
            ip = ctx.take(sn.name)
            if ip is None:
                raise ctx.error(req.path, f"pod subnet '{sn.name}' ({sn.cidr}) has no free address left for pod "
                                          f"'{req.name}': in the eni model every pod holds a VPC address; use a "
                                          "larger pod_subnet")
            groups = secgroup.bind(spec.securityGroups, path + ("securityGroups",), req.name, req.namespace,
                                   req.labels, known, ctx) or [group.name]
            vlan = subenis[req.node] if spec.sub_eni == "vlan" else None
            pods.append(pod_info(ctx.lab, spec.name, req, ip,
                                 network=_pod_network(spec.name, req.name, spec.sub_eni, ip, vlan, groups)))
        network = EniNetwork(pod_subnet=sn.name, sub_eni=spec.sub_eni, max_pods=spec.max_pods,
                             default_group=group.name, bindings=spec.securityGroups)
        return Allocation(nodes=nodes, pods=pods, mtu=ctx.underlay_mtu, network=network,
                          container_cidr=sn.cidr, security_groups=[group])

    def new_pod(self, lab: Lab, cluster: ClusterInfo, req: PodRequest, used: set) -> PodInfo | None:
        """A pod `netlab scale` adds: the same limits as at resolve, the first free address of
        the pod subnet, the first free VLAN of its node's trunk."""
        if req.host_network:
            return super().new_pod(lab, cluster, req, used)
        net: EniNetwork = cluster.network
        node = cluster.node(req.node)
        on_node = cluster.pods_on(node.name)
        limit = pod_limit(net.max_pods, node.network.sub_eni_quota)
        if len(on_node) + 1 > limit or len([p for p in cluster.pods if p.node == node.name]) + 1 > net.max_pods:
            raise UserError(f"node '{node.name}' holds {len(on_node)} sub-ENIs already; pods per node = "
                            f"min(max_pods {net.max_pods}, sub_eni_quota {node.network.sub_eni_quota}) = {limit}")
        sn = lab.subnet(net.pod_subnet)
        pool = ipam.Pool(sn.cidr)
        for ip in used:
            pool.claim(ip)
        ip = pool.next()
        if ip is None:
            return None
        vlan = None
        if net.sub_eni == "vlan":
            taken = {p.network.vlan_id for p in on_node}
            vlan = next(v for v in range(1, 4095) if v not in taken)
        groups = secgroup.groups_for(net.bindings, req.namespace, req.labels) or [net.default_group]
        return pod_info(lab.name, cluster.name, req, ip,
                        network=_pod_network(cluster.name, req.name, net.sub_eni, ip, vlan, groups))

    # -- plan ----------------------------------------------------------------------------
    def ops(self, lab: Lab, cluster: ClusterInfo) -> list[Op]:
        net: EniNetwork = cluster.network
        vpc = lab.vpc_of_subnet(net.pod_subnet)
        bridge = vpc.subnet(net.pod_subnet).bridge
        out: list[Op] = []
        for node in cluster.nodes:
            port = node.network.trunk_port
            out += [AddNetns(node.netns), Sysctl(node.netns, "net.ipv4.ip_forward", "1"),
                    no_icmp_ratelimit(node.netns)]
            out += attach_ops(lab, node.netns, node.eth0)
            out += [AddVeth(node.netns, TRUNK, vpc.netns, port, lab.underlay_mtu),
                    # The trunk holds no address of the node: it answers no ARP (the node
                    # would otherwise claim its own address there too, on a shared subnet).
                    Sysctl(node.netns, f"net.ipv4.conf.{TRUNK}.arp_ignore", "1"), SetLink(node.netns, TRUNK)]
            if net.sub_eni == "vlan":
                out.append(SetLink(vpc.netns, port))  # a trunk: its VLANs are the bridge ports
            else:
                out += [SetLink(vpc.netns, port, master=bridge), SetBridgePort(vpc.netns, port, hairpin=True)]
            out.append(NftApply(node.netns, service_path_rules(node), purpose="SNAT of pods' Service traffic"))
        for pod in cluster.netns_pods():
            out += self.pod_ops(lab, cluster, pod)
        return out

    def pod_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        """One pod (also for `netlab scale`): its sub-ENI on the node's trunk, moved into its
        namespace, and its veth path to the node for the node IP and the Service CIDR."""
        net: EniNetwork = cluster.network
        node = cluster.node(pod.node)
        info: EniPod = pod.network
        vpc = lab.vpc_of_subnet(net.pod_subnet)
        sn = vpc.subnet(net.pod_subnet)
        # Created under a name the node does not use (older kernels, 6.1 among them, look a
        # new link's name up in the requesting namespace: EEXIST for eth0), renamed in the pod.
        tmp = naming.ifname("sub-", pod.name, unique_by=f"{cluster.name}/{pod.name}")
        out: list[Op] = [AddNetns(pod.netns),
                         AddLink(pod.netns, tmp, net.sub_eni, parent=TRUNK, parent_netns=node.netns,
                                 mode=SUB_ENI_MODES[net.sub_eni], vlan_id=info.vlan_id, address=info.mac)]
        if net.sub_eni == "vlan":
            out += [AddLink(vpc.netns, info.vpc_port, "vlan", parent=node.network.trunk_port, vlan_id=info.vlan_id),
                    SetLink(vpc.netns, info.vpc_port, master=sn.bridge)]
        out += [SetLink(pod.netns, "lo"), SetLink(pod.netns, tmp, name="eth0"),
                AddAddress(pod.netns, "eth0", IPv4Interface(f"{pod.ip}/{sn.cidr.prefixlen}")),
                AddRoute(pod.netns, DEFAULT, via=sn.gateway.ip, dev="eth0"),
                # The veth path: node IP and Service CIDR from the pod, the pod's /32 from the node.
                AddVeth(node.netns, pod.host_ifname, pod.netns, POD_VETH, cluster.mtu),
                SetLink(node.netns, pod.host_ifname),
                AddRoute(node.netns, IPv4Network(f"{pod.ip}/32"), dev=pod.host_ifname, scope_link=True,
                         src=node.eth0.ip),
                SetLink(pod.netns, POD_VETH),
                AddRoute(pod.netns, IPv4Network(f"{node.eth0.ip}/32"), dev=POD_VETH, scope_link=True, src=pod.ip),
                AddRoute(pod.netns, cluster.service_cidr, via=node.eth0.ip, dev=POD_VETH, src=pod.ip)]
        listeners = kube_proxy_listeners(cluster)
        if listeners:
            out.append(AddRoute(pod.netns, DEFAULT, via=node.eth0.ip, dev=POD_VETH, src=pod.ip, table=VETH_TABLE))
            out += [AddRule(pod.netns, VETH_RULE_PRIORITY, VETH_TABLE, dst=IPv4Network(f"{ip}/32"), ipproto=proto,
                            dport=port) for ip, proto, port in listeners]
        return out

    def pod_remove_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        """The namespace takes the sub-ENI and the veth with it; a VLAN's sub-port in the VPC
        router stays unless removed."""
        vlan_port = [DelLink(lab.vpc_of_subnet(cluster.network.pod_subnet).netns, pod.network.vpc_port)] \
            if pod.network.vpc_port else []
        return vlan_port + [DelNetns(pod.netns)]

    # -- traits the checks use -------------------------------------------------------------
    def node_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """A node reaches its own pods over their veths and others through the VPC, with the
        node IP either way."""
        return node.eth0.ip

    def egress_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """No SNAT: a VPC host sees the pod's own address."""
        return pod.ip

    def node_addresses(self, cluster: ClusterInfo, node: NodeInfo) -> tuple[IPv4Address, ...]:
        return (node.eth0.ip,)

    def service_sources(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> tuple[IPv4Address, ...]:
        """A pod's Service traffic is SNATed to its node IP when forwarded (see the module
        docstring); an endpoint on the node's own stack (hostNetwork) sees the pod itself."""
        return (node.eth0.ip, pod.ip)

    def hairpin_source(self, cluster: ClusterInfo, node: NodeInfo) -> IPv4Address:
        """A pod's connection back to itself through its Service crosses the node's Service
        path, which SNATs it to the node IP (see the module docstring)."""
        return node.eth0.ip

    # -- explanations --------------------------------------------------------------------
    def explain_same_node(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, from_node: bool) -> str:
        if from_node:
            return f"same node: {node.name} routes {pod.ip}/32 over the pod's Service path {pod.host_ifname}"
        kind = cluster.network.sub_eni
        return (f"through the VPC: {kind} sub-ENIs hand even a sibling's frames to the subnet "
                f"{cluster.network.pod_subnet}'s bridge, which sends them back (hairpin on {TRUNK}'s port)")

    def explain_across_nodes(self, cluster: ClusterInfo, src_node: NodeInfo, node: NodeInfo, pod: PodInfo,
                             from_node: bool) -> str | None:
        if from_node:
            return None  # the node's own stack leaves by eth0: the VPC routes it to the subnet
        return (f"straight over VPC subnet {cluster.network.pod_subnet}: the {cluster.network.sub_eni} "
                f"sub-ENI of {node.name}'s {TRUNK} holds {pod.ip}, no route and no encapsulation")

    def node_group_rules(self, cluster: ClusterInfo, vpc, group: str) -> list[Rule]:
        """Everything from the pod subnet: pods reach their nodes (the service's `all from
        the container subnet`)."""
        return [Rule(protocol="all", remote_ip_prefix=cluster.container_cidr, description="the pod subnet")]

    # -- show ----------------------------------------------------------------------------
    def show(self, lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[ShowCommand]:
        """The trunk, the sub-ENI and routes of every pod on the node, the node's Service-path
        SNAT, and the security groups of the pods' VPC."""
        vpc = lab.vpc_of_subnet(cluster.network.pod_subnet)
        out = [ShowCommand(f"ip -d link show {TRUNK}", ("ip", "-d", "link", "show", TRUNK), node.netns),
               ShowCommand(f"nft list table ip {NODE_TABLE}", ("nft", "list", "table", "ip", NODE_TABLE), node.netns)]
        for pod in cluster.pods_on(node.name):
            out += [ShowCommand(f"{pod.name}: ip -d address show eth0", ("ip", "-d", "address", "show", "eth0"),
                                pod.netns),
                    ShowCommand(f"{pod.name}: ip route", ("ip", "route"), pod.netns)]
        out.append(ShowCommand(f"{vpc.name}: nft list table ip {secgroup.TABLE}",
                               ("nft", "list", "table", "ip", secgroup.TABLE), vpc.netns))
        return out


def kube_proxy_listeners(cluster: ClusterInfo) -> list[tuple[IPv4Address, str, int]]:
    """(address, protocol, port) outside the Service CIDR that kube-proxy serves on the node:
    Services' externalIPs and the load-balancer ingress it short-circuits (not that published
    with ipMode Proxy, which must go through the load balancer)."""
    out: set[tuple[IPv4Address, str, int]] = set()
    for info in cluster.services:
        ips = set(info.spec.externalIPs)
        if info.load_balancer:
            ips.update(i.ip for i in info.load_balancer if i.ip_mode != "Proxy")
        elif info.spec.type == "LoadBalancer" and info.spec.loadBalancerIP:
            ips.add(info.spec.loadBalancerIP)
        out.update((ip, p.protocol.lower(), p.port) for ip in ips if ip not in cluster.service_cidr
                   for p in info.spec.ports)
    return sorted(out)


def _pod_network(cluster: str, pod: str, kind: str, ip: IPv4Address, vlan: int | None, groups: list[str]) -> EniPod:
    return EniPod(mac=None if kind == "ipvlan" else mac_of(ip), vlan_id=vlan,
                  vpc_port=naming.vpc_port(f"{cluster}/{pod}") if kind == "vlan" else None,
                  security_groups=groups)


def service_path_rules(node: NodeInfo) -> str:
    """The node's `ip netlab-eni` table: what enters from a pod's veth and is forwarded
    (a Service's traffic after kube-proxy's DNAT or IPVS) leaves with the node IP, so that
    the endpoint's reply comes back through this node (see the module docstring)."""
    mark = f"0x{SERVICE_MARK:08x}"
    return (f"add table ip {NODE_TABLE}\n"
            f"delete table ip {NODE_TABLE}\n"
            f"table ip {NODE_TABLE} {{\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
            f'\t\tiifname "veth-*" meta mark set meta mark | {mark} comment "from a pod\'s veth"\n'
            "\t}\n"
            "\tchain postrouting {\n"
            "\t\ttype nat hook postrouting priority srcnat - 10; policy accept;\n"
            f"\t\tmeta mark & {mark} == {mark} counter snat to {node.eth0.ip} "
            f'comment "a pod\'s Service traffic: replies must come back through this node"\n'
            "\t}\n"
            "}\n")


MODEL = EniModel()
