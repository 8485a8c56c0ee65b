"""`netlab show`: what a node holds right now, read from the kernel and the switch itself:
its addresses and routes, kube-proxy's entry points (the KUBE-SERVICES chain, the nft table's
service map, or the IPVS virtual servers), and whatever its network model shows of its own
datapath (`NetworkModel.show`: for the tunnel model the virtual switch). For an ELB: its
addresses, listeners, the layer-4 datapath (IPVS or nftables) as the kernel holds it, every
member's health and its nginx configuration's servers."""

from __future__ import annotations

import json

from netlab import models
from netlab.apply.processes import run_checked, run_host
from netlab.apply.state import StateDir
from netlab.lab.model import ClusterInfo, ElbInfo, Lab, NodeInfo


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


def elb_sections(lab: Lab, elb: ElbInfo) -> list[tuple[str, str]]:
    ns = elb.netns
    eips = ", ".join(map(str, lab.eips_of(elb.ref))) or "none"
    head = (f"{elb.type} ELB, private address {elb.ip}, EIP {eips}"
            + (f", backend-side address {elb.backend_address}" if elb.backend_address else "")
            + f"\nlayer-4 datapath: {elb.datapath}"
            + ("" if elb.datapath == "ipvs" else " (no ip_vs in this kernel)") + "\n"
            + "".join(f"listener {ln.protocol}:{ln.port}" + (f" → {ln.pool}" if ln.pool else " (nginx: Ingress)")
                      + "\n" for ln in elb.listeners))
    out = [(f"{elb.ref}", head), (f"{elb.ref}: addresses", run_checked(ns, ["ip", "-br", "address"]))]
    if elb.datapath == "ipvs":
        out.append((f"{elb.ref}: IPVS virtual servers", run_checked(ns, ["ipvsadm", "-Ln"])))
    out.append((f"{elb.ref}: table ip netlab-elb", run_checked(ns, ["nft", "list", "table", "ip", "netlab-elb"])))
    conf = StateDir(lab.name).path / "elb" / elb.name / "nginx.conf"
    if conf.exists():  # layer 7: the servers and locations nginx was given
        keep = ("upstream ", "server ", "listen ", "server_name ", "location ", "proxy_pass ", "return ")
        text = "".join(line + "\n" for line in conf.read_text().splitlines() if line.strip().startswith(keep))
        out.append((f"{elb.ref}: nginx ({conf})", text))
    status = StateDir(lab.name).path / "healthcheck.json"
    if status.exists():
        pools = json.loads(status.read_text())["elbs"].get(elb.ref, {})
        text = "".join(f"{pool}\n" + "".join(f"  {key} ({m['target']}): {m['state']} ({m['last']})\n"
                                              for key, m in members.items())
                       for pool, members in pools.items())
        out.append((f"{elb.ref}: health of the backend servers", text or "no health checks\n"))
    return out
