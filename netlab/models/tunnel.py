"""The container tunnel network model: pod Ethernet frames carried between nodes in VXLAN.

The VPC knows nothing of the container CIDR (no VPC routes): each node owns a block of it
(`pod_cidr_size`, as in `models.common`), and pod traffic between nodes is encapsulated in
VXLAN (UDP 4789, the cluster's `vni`) from node IP to node IP. Pod MTU is the underlay MTU
minus the 50 bytes VXLAN adds (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).

`switch: ovs` (the default) — each node runs its own Open vSwitch (ovsdb-server and
ovs-vswitchd started inside the node namespace, files in `/run/netlab/<lab>/<cluster>/<node>/`).
`br-int` holds one port per pod, a gateway port `gw0` (internal port: the pod-CIDR gateway
address lives on it in the node stack, so Service rules and SNAT see pod traffic) and a
`vxlan0` port (`remote_ip=flow`, `key=<vni>`). OpenFlow tables of `br-int`:

- table 0 (classifier): pods may only send from their own address (spoof guard); ARP goes
  to table 10, IP to table 20; anything else is dropped.
- table 10 (ARP responder): OVS answers every ARP request itself — a local pod's address
  with that pod's MAC, the local gateway with `gw0`'s MAC, a remote node's gateway (the
  node stack's next hop for that node's pod CIDR) with that gateway's MAC. No ARP crosses
  the tunnel.
- table 20 (L3 forwarding): a local pod address → rewrite MACs, output to its port; a
  remote node's pod CIDR → `set_field:<node ip>->tun_dst`, output to `vxlan0`; anything
  else → `gw0` (the node stack routes it on: to the VPC with SNAT, to Services, …).
  What comes from `gw0` is committed to conntrack (zone 1) with `ct_mark=1`; what goes to
  a local pod from elsewhere is looked up there first (table 30).
- table 30 (after the conntrack lookup): a reply of a connection the node stack sent
  (ct_mark 1) goes back to `gw0` instead of straight to the pod. kube-proxy DNATs a pod's
  connection to a ClusterIP in the node stack; the endpoint's reply must cross that stack
  again for the reverse NAT, or the pod sees an answer from an address it never called
  (what Antrea does when kube-proxy serves the Services).

Datapath: the OVS kernel datapath (`system`) when the kernel has the `openvswitch` module;
otherwise the userspace datapath (`netdev`) with native tunnelling, where the node IP
must live on a `br-phy` bridge that holds `eth0` (OVS routes and ARPs for the tunnel
itself, from the addresses and routes of the node stack).

`switch: linux-bridge` — what Flannel's vxlan backend programs: pods on a Linux bridge
`cni0` (gateway address on it), one kernel VXLAN device per node with learning off, and for
every remote node a route to its pod CIDR via its VTEP address (the block's network
address, onlink), a permanent ARP entry for that address and a permanent FDB entry sending
that VTEP MAC to the node IP. (Flannel's default port is 8472; netlab uses 4789 for both.)
As kubeadm requires for Flannel, `net.bridge.bridge-nf-call-iptables=1` (br_netfilter):
a Service's reply from a pod on the same node is bridged, and only then does it meet
conntrack for the reverse NAT.

Pod traffic leaving the cluster (to VPC hosts, the internet) is SNATed to the node IP by an
iptables MASQUERADE rule in each node, `-s <container CIDR> ! -d <container CIDR>`, as the
real tunnel network does: the VPC has no route back to the container CIDR. For the same
reason a VPC host cannot reach a pod directly: the generated checks expect `blocked`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field

from netlab import paths
from netlab.cloud.vpc import DEFAULT, attach_ops, no_icmp_ratelimit
from netlab.lab.model import ClusterInfo, Lab, ModelInfo, NodeInfo, PodInfo
from netlab.models.base import Allocation, NetworkModel, ShowCommand, SwitchQuery
from netlab.models.common import mac_of, node_blocks, pods_from_blocks
from netlab.plan.ops import (AddAddress, AddFdb, AddLink, AddNeigh, AddNetns, AddRoute, AddVeth, AddVxlan,
                             DelNetns, IptablesRestore, Op, OvsAppctl, OvsBridge, OvsConfigure, OvsCreateDb, OvsFlows,
                             OvsPort, OvsSync, SetLink, SetOffload, StartProcess, Sysctl)
from netlab.scenario.types import ClusterBase, NodeCidrFields


class Cluster(ClusterBase, NodeCidrFields):
    """A container-tunnel-network cluster: the model's fields beside the common ones."""

    model: Literal["tunnel"]
    switch: Literal["ovs", "linux-bridge"] = Field(
        default="ovs", description="the virtual switch on each node (ovs: Open vSwitch; "
                                   "linux-bridge: kernel VXLAN as Flannel)")
    vni: int = Field(default=1, ge=1, le=16777215, description="the VXLAN network identifier")
    ovs_datapath: Literal["auto", "system", "netdev"] = Field(
        default="auto", description="switch ovs: system (the openvswitch kernel module), netdev "
                                    "(userspace), or auto (system when the kernel has it)")


class TunnelNetwork(ModelInfo):
    """The tunnel model's decisions for a cluster: which switch, VNI and OVS datapath."""

    type: Literal["tunnel"] = "tunnel"
    switch: Literal["ovs", "linux-bridge"]
    vni: int
    port: int  # VXLAN UDP destination port
    datapath: Literal["system", "netdev"] | None = None  # OVS only


VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

# Names on an OVS node.
BR_INT, BR_PHY, GW_PORT, TUN_PORT = "br-int", "br-phy", "gw0", "vxlan0"
GW_OFPORT, TUN_OFPORT, FIRST_POD_OFPORT = 1, 2, 10
OFPP_MAX = 0xFF00  # the highest OpenFlow port number
CT_ZONE = 1  # the conntrack zone of br-int's flows
# Names on a linux-bridge node.
BRIDGE = "cni0"


def datapath_for(features: frozenset[str] | set[str]) -> str:
    """The OVS datapath `auto` picks on a kernel with these features (netlab.capabilities names)."""
    return "system" if "openvswitch" in features else "netdev"


def vtep_device(vni: int) -> str:
    return f"vxlan.{vni}"


def vtep_ip(node: NodeInfo) -> IPv4Address:
    """Flannel's VTEP address: the network address of the node's pod CIDR."""
    return node.pod_cidr.network_address


# -- plan --------------------------------------------------------------------------------------
def node_dir(lab: str, cluster: str, node: str) -> PurePosixPath:
    """Where a node's OVS keeps its database, sockets, pidfiles and logs."""
    return paths.object_dir(lab, cluster, node)


def pod_ofport(node: NodeInfo, pod: PodInfo) -> int:
    """A pod's OpenFlow port number on br-int, fixed by its address so that it never changes
    while pods come and go (`netlab scale`)."""
    return FIRST_POD_OFPORT + int(pod.ip) - int(node.pod_cidr.network_address)


def pod_ops(lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
    """One pod on a running node (what `netlab scale` adds): its namespace and veth, and on
    OVS its br-int port and the node's flow table replaced to include it."""
    node = cluster.node(pod.node)
    if cluster.network.switch == "linux-bridge":
        return _pod_ops(cluster, node, pod, master=BRIDGE, mac=None, tx_checksum_off=False)
    netdev = cluster.network.datapath == "netdev"
    d = node_dir(lab.name, cluster.name, node.name)
    return (_pod_ops(cluster, node, pod, master=None, mac=mac_of(pod.ip), tx_checksum_off=netdev)
            + ([_ignore_arp(node, pod.host_ifname)] if netdev else [])
            + [OvsConfigure(node.netns, str(d / "db.sock"), ports=(_pod_port(lab, cluster, node, pod),)),
               _flows_op(lab, cluster, node)])


def pod_remove_ops(lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
    """Remove a pod (`cluster` no longer holds it): its flows and br-int port first, then its
    namespace, which takes the veth pair with it."""
    if cluster.network.switch == "linux-bridge":
        return [DelNetns(pod.netns)]
    node = cluster.node(pod.node)
    d = node_dir(lab.name, cluster.name, node.name)
    return [_flows_op(lab, cluster, node),
            OvsConfigure(node.netns, str(d / "db.sock"), del_ports=(OvsPort(BR_INT, pod.host_ifname),)),
            DelNetns(pod.netns)]


def _pod_ops(cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, *, master: str | None,
             mac: str | None, tx_checksum_off: bool) -> list[Op]:
    gw = node.pod_gateway
    out: list[Op] = [
        AddNetns(pod.netns),
        AddVeth(node.netns, pod.host_ifname, pod.netns, "eth0", cluster.mtu),
        # On cni0, hairpin mode, as Flannel's CNI configuration sets it (hairpinMode: true): a
        # pod that kube-proxy sends to itself through its own Service leaves and comes back
        # by the same bridge port.
        SetLink(node.netns, pod.host_ifname, master=master, hairpin=master == BRIDGE),
        SetLink(pod.netns, "lo"),
        SetLink(pod.netns, "eth0", address=mac),
        AddAddress(pod.netns, "eth0", IPv4Interface(f"{pod.ip}/{node.pod_cidr.prefixlen}")),
        AddRoute(pod.netns, DEFAULT, via=gw, dev="eth0"),
    ]
    if tx_checksum_off:
        # veth leaves TCP/UDP checksums for "hardware" to fill in, and the userspace datapath
        # passes what it reads from one veth to the next as is: the receiving pod drops it as
        # corrupt (seen with UDP between pods on one node; ping carries no offloaded checksum).
        out.append(SetOffload(pod.netns, "eth0", tx_checksum=False))
    return out


def _ignore_arp(node: NodeInfo, ifname: str) -> Sysctl:
    # A userspace-datapath port stays an ordinary interface of the node stack, which sees
    # every frame OVS reads from it. If the stack answered ARP there (for the gateway
    # address it holds on gw0, or the node IP on br-phy) with the port's own MAC, it would
    # also route what then arrives: every packet twice (ping reports DUP!).
    return Sysctl(node.netns, f"net.ipv4.conf.{ifname}.arp_ignore", "8")


def _pod_port(lab: Lab, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> OvsPort:
    return OvsPort(BR_INT, pod.host_ifname, ofport_request=pod_ofport(node, pod),
                   external_ids=(("netlab-lab", lab.name), ("netlab-pod", f"{cluster.name}/{pod.name}")))


def _flows_op(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> OvsFlows:
    d = node_dir(lab.name, cluster.name, node.name)
    return OvsFlows(node.netns, BR_INT, str(d / f"{BR_INT}.mgmt"), tuple(br_int_flows(cluster, node)))


def _snat(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> Op:
    cidr = cluster.container_cidr
    rules = (
        "*nat\n"
        ":NETLAB-TUNNEL-SNAT - [0:0]\n"
        '-A POSTROUTING -m comment --comment "netlab: pod traffic leaving the cluster" -j NETLAB-TUNNEL-SNAT\n'
        f'-A NETLAB-TUNNEL-SNAT -s {cidr} ! -d {cidr} -m comment --comment '
        f'"netlab {lab.name}: the VPC has no route to {cidr}" -j MASQUERADE\n'
        "COMMIT\n")
    return IptablesRestore(node.netns, rules, purpose="pod egress SNAT to the node IP")


def ovs_node_ops(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> tuple[list[Op], list[Op]]:
    """A node on Open vSwitch, in two parts: up to its OVSDB transaction (committed without
    waiting), and from the wait for ovs-vswitchd on. The model runs every node's first part
    before any second one, so the switches apply their configurations side by side while
    the next nodes are built, instead of one after the other."""
    t = cluster.network
    netdev = t.datapath == "netdev"
    d = node_dir(lab.name, cluster.name, node.name)
    db, sock = str(d / "conf.db"), str(d / "db.sock")
    tag = (("netlab-lab", lab.name),)
    pods = cluster.pods_on(node.name)
    remotes = [n for n in cluster.nodes if n.name != node.name]

    out: list[Op] = [AddNetns(node.netns), Sysctl(node.netns, "net.ipv4.ip_forward", "1"),
                     no_icmp_ratelimit(node.netns)]
    # Userspace datapath: the node IP moves to br-phy, created by ovs-vswitchd below.
    out += attach_ops(lab, node.netns, node.eth0, address_on=None if netdev else "eth0")
    if netdev:
        # The same checksum trap in the other direction: frames from the VPC arrive at eth0
        # with checksums left for offload, and OVS hands them to the node stack unfinished.
        out.append(SetOffload(lab.vpc.netns, node.eth0.port, tx_checksum=False))
    for pod in pods:
        out += _pod_ops(cluster, node, pod, master=None, mac=mac_of(pod.ip), tx_checksum_off=netdev)
    if netdev:
        out += [_ignore_arp(node, ifname) for ifname in ["eth0"] + [p.host_ifname for p in pods]]

    key = f"{cluster.name}.{node.name}"
    out += [
        OvsCreateDb(node.netns, db),
        StartProcess(node.netns, name=f"ovsdb-server@{key}", ready_file=sock,
                     argv=("ovsdb-server", db, f"--remote=punix:{sock}", f"--unixctl={d}/ovsdb-server.ctl",
                           f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log", "--no-chdir")),
        # OVS_RUNDIR: where ovs-vswitchd puts each bridge's OpenFlow socket (<bridge>.mgmt);
        # every node has a br-int, so each needs its own.
        StartProcess(node.netns, name=f"ovs-vswitchd@{key}",
                     ready_file=f"{d}/ovs-vswitchd.ctl",
                     argv=("env", f"OVS_RUNDIR={d}", "ovs-vswitchd", f"unix:{sock}",
                           f"--unixctl={d}/ovs-vswitchd.ctl", f"--pidfile={d}/ovs-vswitchd.pid",
                           f"--log-file={d}/ovs-vswitchd.log", "--no-chdir")),
    ]

    bridges, ports = [], []
    if netdev:
        bridges.append(OvsBridge(BR_PHY, datapath_type="netdev", fail_mode="standalone",
                                 other_config=(("hwaddr", mac_of(node.eth0.ip)),), external_ids=tag))
        ports.append(OvsPort(BR_PHY, "eth0", external_ids=tag))
    bridges.append(OvsBridge(BR_INT, datapath_type=t.datapath, fail_mode="secure", external_ids=tag))
    ports += [OvsPort(BR_INT, GW_PORT, type="internal", mac=mac_of(node.pod_gateway), mtu_request=cluster.mtu,
                      ofport_request=GW_OFPORT, external_ids=tag),
              OvsPort(BR_INT, TUN_PORT, type="vxlan",
                      options=(("remote_ip", "flow"), ("key", str(t.vni)), ("dst_port", str(t.port))),
                      ofport_request=TUN_OFPORT, external_ids=tag)]
    ports += [_pod_port(lab, cluster, node, pod) for pod in pods]
    out.append(OvsConfigure(node.netns, sock, bridges=tuple(bridges), ports=tuple(ports), init=True, wait=False))

    # br-phy and gw0 exist once ovs-vswitchd has given every interface its OpenFlow port.
    interfaces = tuple(b.name for b in bridges) + tuple(p.name for p in ports)
    first, out = out, [OvsSync(node.netns, sock, interfaces)]
    if netdev:
        out += [SetLink(node.netns, BR_PHY),
                AddAddress(node.netns, BR_PHY, node.eth0.address),
                AddRoute(node.netns, DEFAULT, via=node.eth0.gateway, dev=BR_PHY)]
    out += [SetLink(node.netns, GW_PORT),
            AddAddress(node.netns, GW_PORT, IPv4Interface(f"{node.pod_gateway}/{node.pod_cidr.prefixlen}"))]
    out += [AddRoute(node.netns, r.pod_cidr, via=r.pod_gateway, dev=GW_PORT, onlink=True) for r in remotes]
    out.append(_flows_op(lab, cluster, node))
    if netdev:
        # Static entries in OVS's tunnel neighbour cache (it does not use the kernel's): the
        # first packet to a node would otherwise be dropped while OVS resolves its MAC.
        out += [OvsAppctl(node.netns, f"{d}/ovs-vswitchd.ctl",
                          ("tnl/neigh/set", BR_PHY, str(r.eth0.ip), mac_of(r.eth0.ip))) for r in remotes]
    out.append(_snat(lab, cluster, node))
    return first, out


def _switch_query(lab: Lab, cluster: ClusterInfo, node: NodeInfo, in_port: str, p, dl_src: str, dl_dst: str,
                  extra: str = "") -> SwitchQuery:
    """`ofproto/trace` of br-int for packet headers `p` (netlab.trace.nftrace.Packet)."""
    fields = [f"in_port={in_port}", *([extra] if extra else []), p.proto, f"dl_src={dl_src}", f"dl_dst={dl_dst}",
              f"nw_src={p.saddr}", f"nw_dst={p.daddr}", f"nw_ttl={p.ttl or 64}"]
    if p.proto in ("tcp", "udp"):
        fields += [f"tp_src={p.sport}", f"tp_dst={p.dport}"]
    elif p.proto == "icmp":
        fields += [f"icmp_type={8 if p.icmp_type == 'echo-request' else 0}", "icmp_code=0"]
    ctl = node_dir(lab.name, cluster.name, node.name) / "ovs-vswitchd.ctl"
    return SwitchQuery(cluster.name, node.name, in_port,
                       ("ovs-appctl", "-t", str(ctl), "ofproto/trace", BR_INT, ",".join(fields)), p)


def _port_name(cluster: ClusterInfo, node: NodeInfo, port: int | None) -> str | None:
    if port is None:
        return None
    if port == GW_OFPORT:
        return GW_PORT
    if port == TUN_OFPORT:
        return TUN_PORT
    pod = next((p for p in cluster.pods_on(node.name) if pod_ofport(node, p) == port), None)
    return pod.host_ifname if pod else str(port)


OVS_DAEMONS = ("ovs-vswitchd", "ovsdb-server")


def ovs_appctl_target(argv: list[str], d: PurePosixPath) -> list[str]:
    """`ovs-appctl [-t DAEMON] ...` aimed at a node's control sockets (`ovs-vswitchd` unless
    the user names `ovsdb-server`, or a socket path of their own); other commands unchanged."""
    if PurePosixPath(argv[0]).name != "ovs-appctl":
        return argv
    out = [argv[0]]
    rest = list(argv[1:])
    target = None
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        if opt in ("-t", "--target") and rest:
            target = rest.pop(0)
        elif opt.startswith("--target="):
            target = opt.split("=", 1)[1]
        else:
            out.append(opt)
    if target is None or target in OVS_DAEMONS:
        target = str(d / f"{target or 'ovs-vswitchd'}.ctl")
    return out + [f"--target={target}", *rest]


def _arp_reply(ip: IPv4Address, mac: str) -> str:
    return (f"table=10,priority=100,arp,arp_op=1,arp_tpa={ip},actions="
            f"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,set_field:2->arp_op,"
            f"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:{mac}->arp_sha,"
            f"move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:{ip}->arp_spa,IN_PORT")


def br_int_flows(cluster: ClusterInfo, node: NodeInfo) -> list[str]:
    """The whole OpenFlow table of a node's br-int (the tables are described in the module
    docstring)."""
    pods = cluster.pods_on(node.name)
    remotes = [n for n in cluster.nodes if n.name != node.name]
    gw_mac = mac_of(node.pod_gateway)
    flows = [f"table=0,priority=100,in_port={GW_OFPORT},arp,actions=resubmit(,10)",
             f"table=0,priority=100,in_port={GW_OFPORT},ip,actions=resubmit(,20)",
             f"table=0,priority=100,in_port={TUN_OFPORT},ip,actions=resubmit(,20)"]
    for pod in pods:
        port = pod_ofport(node, pod)
        flows += [f"table=0,priority=100,in_port={port},arp,arp_spa={pod.ip},actions=resubmit(,10)",
                  f"table=0,priority=100,in_port={port},ip,nw_src={pod.ip},actions=resubmit(,20)"]
    flows.append("table=0,priority=0,actions=drop")

    flows.append(_arp_reply(node.pod_gateway, gw_mac))
    flows += [_arp_reply(pod.ip, mac_of(pod.ip)) for pod in pods]
    flows += [_arp_reply(r.pod_gateway, mac_of(r.pod_gateway)) for r in remotes]
    flows.append("table=10,priority=0,actions=drop")

    # Connections the node stack sends into br-int (its own, or pod traffic it has NATed for
    # a Service) are committed to conntrack with ct_mark 1; their replies to local pods go
    # back through gw0 so that the stack's conntrack can reverse the NAT (table 30).
    from_stack = f"ct(commit,zone={CT_ZONE},exec(set_field:0x1->ct_mark))"
    for pod in pods:
        deliver = f"set_field:{gw_mac}->eth_src,set_field:{mac_of(pod.ip)}->eth_dst,output:{pod_ofport(node, pod)}"
        flows += [f"table=20,priority=210,in_port={GW_OFPORT},ip,nw_dst={pod.ip},actions={from_stack},{deliver}",
                  f"table=20,priority=200,ip,nw_dst={pod.ip},actions=ct(table=30,zone={CT_ZONE})"]
    for r in remotes:
        tunnel = f"set_field:{r.eth0.ip}->tun_dst,output:{TUN_OFPORT}"
        flows += [f"table=20,priority=110,in_port={GW_OFPORT},ip,nw_dst={r.pod_cidr},actions={from_stack},{tunnel}",
                  f"table=20,priority=100,ip,nw_dst={r.pod_cidr},actions={tunnel}"]
    # Never send the node stack's own packets back to it (it routed them here).
    flows.append(f"table=20,priority=60,in_port={GW_OFPORT},ip,actions=drop")
    flows.append(f"table=20,priority=50,ip,actions=set_field:{gw_mac}->eth_dst,output:{GW_OFPORT}")

    flows.append(f"table=30,priority=200,ct_state=+trk+rpl,ct_mark=0x1,ip,actions="
                 f"set_field:{gw_mac}->eth_dst,output:{GW_OFPORT}")
    for pod in pods:
        flows.append(f"table=30,priority=100,ip,nw_dst={pod.ip},actions=set_field:{gw_mac}->eth_src,"
                     f"set_field:{mac_of(pod.ip)}->eth_dst,output:{pod_ofport(node, pod)}")
    flows.append("table=30,priority=0,actions=drop")
    return flows


def bridge_node_ops(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[Op]:
    t = cluster.network
    dev = vtep_device(t.vni)
    out: list[Op] = [AddNetns(node.netns), Sysctl(node.netns, "net.ipv4.ip_forward", "1"),
                     no_icmp_ratelimit(node.netns), Sysctl(node.netns, "net.bridge.bridge-nf-call-iptables", "1")]
    out += attach_ops(lab, node.netns, node.eth0)
    out += [AddLink(node.netns, BRIDGE, "bridge", mtu=cluster.mtu),
            AddAddress(node.netns, BRIDGE, IPv4Interface(f"{node.pod_gateway}/{node.pod_cidr.prefixlen}")),
            # A bridge whose MAC was never set takes the lowest MAC of its ports, so it changes
            # as pods come and go and the pods' ARP entry for their gateway goes dead (`netlab
            # scale`). A MAC set once stays (the CNI bridge plugin does the same).
            SetLink(node.netns, BRIDGE, address=mac_of(node.pod_gateway)),
            AddVxlan(node.netns, dev, t.vni, node.eth0.ip, "eth0", t.port, cluster.mtu,
                     address=mac_of(vtep_ip(node))),
            AddAddress(node.netns, dev, IPv4Interface(f"{vtep_ip(node)}/32")),
            SetLink(node.netns, dev)]
    for r in cluster.nodes:
        if r.name == node.name:
            continue
        mac = mac_of(vtep_ip(r))
        out += [AddNeigh(node.netns, dev, vtep_ip(r), mac),
                AddFdb(node.netns, dev, mac, r.eth0.ip),
                AddRoute(node.netns, r.pod_cidr, via=vtep_ip(r), dev=dev, onlink=True)]
    for pod in cluster.pods_on(node.name):
        out += pod_ops(lab, cluster, pod)
    out.append(_snat(lab, cluster, node))
    return out


class TunnelModel(NetworkModel):
    name = "tunnel"
    Cluster = Cluster
    ENCAP = "vxlan"  # what crosses the underlay between nodes
    VPC_HOST_TO_POD = "blocked"  # the VPC route table has no route to the container CIDR

    def encap_flow(self, cluster: ClusterInfo) -> tuple[str, int] | None:
        return "udp", cluster.network.port

    def node_group_rules(self, cluster: ClusterInfo, vpc, group: str) -> list:
        """VXLAN between the cluster's nodes (UDP to the tunnel port, from the group's members)."""
        from netlab.scenario.security_groups import Rule

        return [Rule(protocol="udp", port=cluster.network.port, remote_group=group, description="VXLAN between nodes")]

    # -- resolve ---------------------------------------------------------------------------
    def allocate(self, spec: Cluster, nodes: list[NodeInfo], path, ctx) -> Allocation:
        datapath = None
        if spec.switch == "ovs":
            datapath = datapath_for(ctx.features) if spec.ovs_datapath == "auto" else spec.ovs_datapath
            if ctx.check_host and datapath == "system" and "openvswitch" not in ctx.features:
                raise ctx.error(path + ("ovs_datapath",),
                                "ovs_datapath: system needs the openvswitch kernel module, which this kernel "
                                "does not offer; use auto or netdev (the userspace datapath)")
        elif "ovs_datapath" in spec.model_fields_set:
            raise ctx.error(path + ("ovs_datapath",), "ovs_datapath applies to switch: ovs only; remove it")
        mtu = ctx.underlay_mtu - VXLAN_OVERHEAD
        nodes = node_blocks(spec, nodes, path, ctx)
        pods = pods_from_blocks(spec, nodes, path, ctx)
        if spec.switch == "ovs" and any(pod_ofport(n, p) > OFPP_MAX for n in nodes for p in pods
                                        if p.node == n.name and not p.hostNetwork):
            raise ctx.error(path + ("pods",), f"a node's br-int holds at most {OFPP_MAX - FIRST_POD_OFPORT} pods")
        return Allocation(nodes=nodes, pods=pods, mtu=mtu,
                          network=TunnelNetwork(switch=spec.switch, vni=spec.vni, port=VXLAN_PORT,
                                                datapath=datapath))

    # -- plan ------------------------------------------------------------------------------
    def ops(self, lab: Lab, cluster: ClusterInfo) -> list[Op]:
        if cluster.network.switch == "linux-bridge":
            return [op for node in cluster.nodes for op in bridge_node_ops(lab, cluster, node)]
        parts = [ovs_node_ops(lab, cluster, node) for node in cluster.nodes]
        return [op for first, _ in parts for op in first] + [op for _, rest in parts for op in rest]

    def pod_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        return pod_ops(lab, cluster, pod)

    def pod_remove_ops(self, lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> list[Op]:
        return pod_remove_ops(lab, cluster, pod)

    # -- traits the checks use -------------------------------------------------------------
    def node_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a pod sees when a node's own stack connects to it: the address of the
        device the route to the pod leaves by (gw0 / cni0 for local pods; with linux-bridge,
        the VXLAN device's address for remote ones)."""
        if cluster.network.switch == "linux-bridge" and pod.node != node.name:
            return vtep_ip(node)
        return node.pod_gateway

    def egress_source(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo) -> IPv4Address:
        """The source a VPC host sees for a pod's traffic: the node IP (MASQUERADE)."""
        return node.eth0.ip

    def node_addresses(self, cluster: ClusterInfo, node: NodeInfo) -> tuple[IPv4Address, ...]:
        """The node's own addresses a pod may see after SNAT (Services): the node IP, or the
        address of the device towards the pod (gw0 / cni0, or the VXLAN device's)."""
        extra = (vtep_ip(node),) if cluster.network.switch == "linux-bridge" else ()
        return (node.eth0.ip, node.pod_gateway) + extra

    # -- trace -----------------------------------------------------------------------------
    def trace_into_switch(self, lab: Lab, cluster: ClusterInfo, netns: str, ifname: str,
                          packet) -> SwitchQuery | None:
        """A pod's `eth0` or a node stack's `gw0` lead into br-int: trace the packet there,
        with the MACs it carries (the pod's own and its gateway's; OVS answers every ARP)."""
        if cluster.network.switch != "ovs":
            return None
        for node in cluster.nodes:
            if netns == node.netns and ifname == GW_PORT:
                return _switch_query(lab, cluster, node, GW_PORT, packet, mac_of(node.pod_gateway),
                                     mac_of(IPv4Address(packet.daddr)))
            for pod in cluster.pods_on(node.name):
                if netns == pod.netns and ifname == "eth0":
                    return _switch_query(lab, cluster, node, pod.host_ifname, packet, mac_of(pod.ip),
                                         mac_of(node.pod_gateway))
        return None

    def trace_switch_result(self, lab: Lab, cluster: ClusterInfo, query: SwitchQuery,
                            result) -> tuple[str | None, dict | None, SwitchQuery | None]:
        """br-int's output port by name; if it pushed a VXLAN header, the underlay hop and the
        far node's br-int (in_port vxlan0, with the tunnel metadata it will see)."""
        node = cluster.node(query.node)
        output = _port_name(cluster, node, result.output_port)
        tun = result.tunnel
        if not tun:
            return output, None, None
        far = next((n for n in cluster.nodes if str(n.eth0.ip) == tun["dst"]), None)
        underlay = {"encap": "vxlan", "vni": tun["vni"], "outer_src": tun["src"], "outer_dst": tun["dst"],
                    "dst_port": tun["dst_port"], "from_object": f"{cluster.name}/{node.name}",
                    "to_object": f"{cluster.name}/{far.name}" if far else None,
                    "via": lab.vpc_of_subnet(node.eth0.subnet).name}
        if far is None:
            return output, underlay, None
        nxt = _switch_query(lab, cluster, far, TUN_PORT, query.packet, mac_of(node.pod_gateway),
                            mac_of(far.pod_gateway),
                            extra=f"tun_id={tun['vni']},tun_src={tun['src']},tun_dst={tun['dst']}")
        return output, underlay, nxt

    def trace_encap(self, lab: Lab, cluster: ClusterInfo, netns: str, ifname: str,
                    gateway: str | None) -> dict | None:
        """linux-bridge: the node stack routes a remote pod CIDR into the VXLAN device, via the
        far node's VTEP address; the FDB sends that to the far node's IP."""
        t = cluster.network
        if t.switch != "linux-bridge" or ifname != vtep_device(t.vni):
            return None
        node = next((n for n in cluster.nodes if n.netns == netns), None)
        if node is None:
            return None
        far = next((r for r in cluster.nodes if gateway and str(vtep_ip(r)) == gateway), None)
        return {"encap": "vxlan", "vni": t.vni, "outer_src": str(node.eth0.ip),
                "outer_dst": str(far.eth0.ip) if far else None, "dst_port": t.port,
                "from_object": f"{cluster.name}/{node.name}", "to_object": f"{cluster.name}/{far.name}" if far else None,
                "via": lab.vpc_of_subnet(node.eth0.subnet).name}

    # -- exec ------------------------------------------------------------------------------
    def exec_argv(self, lab: Lab, cluster: ClusterInfo, node: NodeInfo, argv: list[str]) -> list[str]:
        """Open vSwitch's clients find a node's own daemons: `OVS_RUNDIR` is the node's
        directory (ovs-vsctl's default database `db.sock`, ovs-ofctl's `<bridge>.mgmt`);
        ovs-appctl looks its target up by pidfile and `<daemon>.<pid>.ctl`, which the node's
        daemons (started with a fixed `--unixctl` path) do not have, so its target is given."""
        if cluster.network.switch != "ovs" or not argv:
            return argv
        d = node_dir(lab.name, cluster.name, node.name)
        return ["env", f"OVS_RUNDIR={d}", f"OVS_DBDIR={d}", *ovs_appctl_target(argv, d)]

    # -- explanations ------------------------------------------------------------------------
    def explain_same_node(self, cluster: ClusterInfo, node: NodeInfo, pod: PodInfo, from_node: bool) -> str:
        ovs = cluster.network.switch == "ovs"
        how = f"br-int on {node.name} delivers it (OpenFlow table 20)" if ovs \
            else f"the bridge cni0 on {node.name} delivers it"
        if from_node:
            how += f", from {node.pod_gateway} ({'gw0' if ovs else 'cni0'})"
        return f"same node: {how}; nothing crosses eth0"

    def explain_across_nodes(self, cluster: ClusterInfo, src_node: NodeInfo, node: NodeInfo, pod: PodInfo,
                             from_node: bool) -> str | None:
        t = cluster.network
        dev = "br-int's vxlan0 port" if t.switch == "ovs" else f"the kernel device {vtep_device(t.vni)}"
        return f"VXLAN to {node.eth0.ip} (VNI {t.vni}) through {dev}: {node.pod_cidr} is {node.name}'s pod CIDR"

    # -- show ------------------------------------------------------------------------------
    def show(self, lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[ShowCommand]:
        """The node's switch. Open vSwitch: bridges and ports, each bridge's flows with packet
        counters, the datapath (userspace: also the tunnel neighbours and routes OVS uses).
        linux-bridge: the VXLAN device, its FDB and neighbour entries, the bridge ports."""
        t = cluster.network
        ns = node.netns
        if t.switch == "linux-bridge":
            dev = vtep_device(t.vni)
            return [ShowCommand(f"ip -d link show {dev}", ("ip", "-d", "link", "show", dev), ns),
                    ShowCommand(f"bridge fdb show dev {dev}", ("bridge", "fdb", "show", "dev", dev), ns),
                    ShowCommand(f"ip neigh show dev {dev}", ("ip", "neigh", "show", "dev", dev), ns),
                    ShowCommand("bridge link show", ("bridge", "link", "show"), ns),
                    ShowCommand(f"ip -s link show {dev}", ("ip", "-s", "link", "show", dev), ns)]
        d = node_dir(lab.name, cluster.name, node.name)
        ctl = str(d / "ovs-vswitchd.ctl")
        out = [ShowCommand("ovs-vsctl show", ("ovs-vsctl", f"--db=unix:{d / 'db.sock'}", "show"))]
        bridges = [BR_INT] + ([BR_PHY] if t.datapath == "netdev" else [])
        out += [ShowCommand(f"ovs-ofctl dump-flows {br}",
                            ("ovs-ofctl", "--names", "dump-flows", f"unix:{d / (br + '.mgmt')}")) for br in bridges]
        if t.datapath == "netdev":
            out += [ShowCommand("ovs-appctl tnl/neigh/show", ("ovs-appctl", "-t", ctl, "tnl/neigh/show")),
                    ShowCommand("ovs-appctl ovs/route/show", ("ovs-appctl", "-t", ctl, "ovs/route/show"))]
        out.append(ShowCommand("ovs-appctl dpctl/show", ("ovs-appctl", "-t", ctl, "dpctl/show")))
        return out


MODEL = TunnelModel()
