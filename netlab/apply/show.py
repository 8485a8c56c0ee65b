"""`netlab show`: what a node's virtual switch holds right now, read from the switch itself
(Open vSwitch: bridges, ports and flows with packet counters; linux-bridge: the VXLAN
device, its FDB and neighbour entries)."""

from __future__ import annotations

from pathlib import Path

from netlab.apply import ovs, vxlan
from netlab.errors import UserError
from netlab.lab.model import ClusterInfo, Lab, NodeInfo
from netlab.models import tunnel


def node_sections(lab: Lab, cluster: ClusterInfo, node: NodeInfo) -> list[tuple[str, str]]:
    if cluster.model != "tunnel":
        raise UserError(f"cluster '{cluster.name}' is model: {cluster.model}; `netlab show` shows the "
                        "virtual switch of tunnel-model nodes (try `netlab exec LAB NODE -- ip route`)")
    t = cluster.tunnel
    if t.switch == "linux-bridge":
        return vxlan.show(node.netns, tunnel.vtep_device(t.vni), tunnel.BRIDGE)
    bridges = [tunnel.BR_INT] + ([tunnel.BR_PHY] if t.datapath == "netdev" else [])
    return ovs.show(Path(tunnel.node_dir(lab.name, cluster.name, node.name)), bridges,
                    netdev=t.datapath == "netdev")
