"""What `ovs-appctl ofproto/trace` says about one packet (pure): the OpenFlow tables it
matched, bridge by bridge (a conntrack recirculation continues the list), their actions,
the port it is output to, the tunnel header OVS pushes, or that it is dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BRIDGE = re.compile(r'^bridge\("([^"]+)"\)')
_TABLE = re.compile(r"^\s*(\d+)\. (?:(.*), )?priority (\d+)")
_TNL = re.compile(r"tnl_push\(.*?ipv4\(src=([\d.]+),dst=([\d.]+).*?udp\(src=\d+,dst=(\d+).*?vxlan\(flags=\S+?,vni=(0x[0-9a-f]+|\d+)\)")


@dataclass
class FlowHit:
    bridge: str
    table: int
    match: str
    priority: int
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"bridge": self.bridge, "table": self.table, "match": self.match, "priority": self.priority,
                "actions": self.actions, "notes": self.notes}


@dataclass
class OvsTrace:
    flows: list[FlowHit]
    datapath_actions: str | None
    output_port: int | None  # the last OpenFlow port of the first bridge it was output to
    tunnel: dict | None  # {"src", "dst", "dst_port", "vni"} when OVS pushes a VXLAN header

    @property
    def dropped(self) -> bool:
        return self.datapath_actions == "drop"


def parse(text: str, bridge: str = "br-int") -> OvsTrace:
    flows: list[FlowHit] = []
    current_bridge = None
    datapath = None
    for line in text.splitlines():
        if m := _BRIDGE.match(line):
            current_bridge = m.group(1)
            continue
        if line.startswith("Datapath actions:"):
            datapath = line.split(":", 1)[1].strip()
            continue
        if current_bridge is None or not line.strip() or line.startswith(("Flow:", "Final flow:", "Megaflow:", "=")):
            if line.startswith(("Flow:", "recirc(")):
                current_bridge = None
            continue
        if m := _TABLE.match(line):
            flows.append(FlowHit(current_bridge, int(m.group(1)), m.group(2) or "", int(m.group(3))))
        elif flows and line.strip().startswith("->"):
            flows[-1].notes.append(line.strip()[2:].strip())
        elif flows and line.startswith("    ") and not line.strip().startswith(("thaw", "Resuming from table")):
            flows[-1].actions.append(line.strip())
    output = None
    for hit in flows:
        if hit.bridge != bridge:
            continue
        for action in hit.actions:
            if action.startswith("output:") and action[7:].isdigit():
                output = int(action[7:])
    tunnel = None
    if datapath and (m := _TNL.search(datapath)):
        vni = m.group(4)
        tunnel = {"src": m.group(1), "dst": m.group(2), "dst_port": int(m.group(3)),
                  "vni": int(vni, 16) if vni.startswith("0x") else int(vni)}
    return OvsTrace(flows, datapath, output, tunnel)
