"""`netlab show`: what a node holds right now, read from the kernel and the switch itself:
its addresses and routes, kube-proxy's entry points (the KUBE-SERVICES chain, the nft table's
service map, or the IPVS virtual servers), and whatever its network model shows of its own
datapath (`NetworkModel.show`: for the tunnel model the virtual switch)."""

from __future__ import annotations

from netlab import models
from netlab.apply.processes import run_checked, run_host
from netlab.lab.model import ClusterInfo, Lab, NodeInfo


def node_sections(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[tuple[str, str]]:
    ns = node.netns
    out = [(f"{node.name}: addresses", run_checked(ns, ["ip", "-br", "address"])),
           (f"{node.name}: routes", run_checked(ns, ["ip", "route"]))]
    out.append(_kube_proxy(cluster, ns))
    for cmd in models.get(cluster.model).show(lab, cluster, node):
        text = run_checked(cmd.netns, list(cmd.argv)) if cmd.netns else run_host(list(cmd.argv))
        out.append((cmd.title, text))
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
