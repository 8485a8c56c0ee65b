"""`netlab show`: what a node holds right now, read from the kernel and the switch itself:
its addresses and routes, kube-proxy's entry points (the KUBE-SERVICES chain, the nft table's
service map, or the IPVS virtual servers), and for tunnel-model nodes the virtual switch
(Open vSwitch: bridges, ports and flows with packet counters; linux-bridge: the VXLAN
device, its FDB and neighbour entries)."""

from __future__ import annotations

from pathlib import Path

from netlab.apply import ovs, vxlan
from netlab.apply.processes import run_checked
from netlab.lab.model import ClusterInfo, Lab, NodeInfo
from netlab.models import tunnel


def node_sections(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[tuple[str, str]]:
    ns = node.netns
    out = [(f"{node.name}: addresses", run_checked(ns, ["ip", "-br", "address"])),
           (f"{node.name}: routes", run_checked(ns, ["ip", "route"]))]
    out.append(_kube_proxy(cluster, ns))
    if cluster.model == "tunnel":
        out += _switch(lab, cluster, node)
    return out


def _kube_proxy(cluster: ClusterInfo, ns: str) -> tuple[str, str]:
    title = f"kube-proxy ({cluster.proxy_mode} mode)"
    if cluster.proxy_mode == "nftables":
        text = run_checked(ns, ["nft", "list", "map", "ip", "kube-proxy", "service-ips"])
        return f"{title}: map service-ips", text
    if cluster.proxy_mode == "ipvs":
        return f"{title}: virtual servers", run_checked(ns, ["ipvsadm", "-Ln"])
    rules = run_checked(ns, ["iptables", "-t", "nat", "-S", "KUBE-SERVICES"])
    return f"{title}: chain KUBE-SERVICES", rules


def _switch(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[tuple[str, str]]:
    t = cluster.tunnel
    if t.switch == "linux-bridge":
        return vxlan.show(node.netns, tunnel.vtep_device(t.vni), tunnel.BRIDGE)
    bridges = [tunnel.BR_INT] + ([tunnel.BR_PHY] if t.datapath == "netdev" else [])
    return ovs.show(Path(tunnel.node_dir(lab.name, cluster.name, node.name)), bridges,
                    netdev=t.datapath == "netdev")
