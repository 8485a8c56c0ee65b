"""One machine's part of a lab split across machines (a simulation; docs/scale-out.md).

The planner builds the whole lab's plan, then `localize` keeps this machine's part:

- operations in namespaces other machines hold are dropped, and so are the VPC router's
  ends of their machines' veths (the router's operations on those ports);
- every VPC router is built on every machine (a distributed router); each subnet's bridge
  is stretched to the other machines by a VXLAN device (VNI `VNI_BASE` + the subnet's index
  in the lab) whose UDP socket lives in the machine's own namespace (`AddMachineVxlan`),
  with a flood entry per other machine (head-end replication) and MAC learning;
- each machine's copy of a subnet's gateway has its own MAC, and the machines of this part
  hold a permanent neighbour entry for their gateway on that MAC: their traffic leaves
  through the router of their own machine, whatever the others answer to ARP.

Pure: like the planner, this only decides operations.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.lab.model import Lab
from netlab.lab.naming import ifname
from netlab.plan.ops import AddFdb, AddLink, AddMachineVxlan, AddNeigh, AddRoute, AddVeth, Op, SetLink

VNI_BASE = 10000
VXLAN_PORT = 4789
FLOOD = "00:00:00:00:00:00"
DEFAULT = IPv4Network("0.0.0.0/0")


def gateway_mac(machine: int, subnet: int) -> str:
    """The MAC of a subnet's gateway on machine number `machine` (locally administered)."""
    return f"02:6e:6c:{machine:02x}:{subnet >> 8 & 0xff:02x}:{subnet & 0xff:02x}"


def localize(lab: Lab, ops: list[Op]) -> list[Op]:
    placement = lab.placement
    assert placement is not None
    here = next(i for i, m in enumerate(placement.machines) if m.name == placement.machine)
    this = placement.machines[here]
    others = [m for m in placement.machines if m.name != this.name]
    remote_ns = placement.elsewhere()
    router_ns = {v.netns for v in lab.vpcs}
    remote_ports = {(lab.vpc_of_subnet(m.eth0.subnet).netns, m.eth0.port)
                    for m in [*lab.hosts, *(n for c in lab.clusters for n in c.nodes)]
                    if m.netns in remote_ns}
    subnets = [(vpc, sn) for vpc in lab.vpcs for sn in vpc.subnets]
    gateways = {sn.gateway.ip: (vpc, i, sn) for i, (vpc, sn) in enumerate(subnets)}
    bridges = {(vpc.netns, sn.bridge): i for i, (vpc, sn) in enumerate(subnets)}

    out: list[Op] = []
    for op in ops:
        if op.netns in remote_ns or (isinstance(op, AddVeth) and op.peer_netns in remote_ns):
            continue
        if op.netns in router_ns and (op.netns, getattr(op, "ifname", None)) in remote_ports:
            continue
        out.append(op)
        if isinstance(op, AddLink) and (op.netns, op.ifname) in bridges:
            i = bridges[(op.netns, op.ifname)]
            out += [SetLink(op.netns, op.ifname, up=False, address=gateway_mac(here, i))]
        elif (isinstance(op, AddRoute) and op.destination == DEFAULT and op.via in gateways
              and op.netns not in router_ns and op.dev):
            _, i, _ = gateways[op.via]
            out.append(AddNeigh(op.netns, op.dev, op.via, gateway_mac(here, i)))
        if isinstance(op, SetLink) and op.up and (op.netns, op.ifname) in bridges:
            out += _stretch(lab, op.netns, op.ifname, bridges[(op.netns, op.ifname)], this, others)
    return out


def _stretch(lab: Lab, netns: str, bridge: str, index: int, this, others) -> list[Op]:
    dev = ifname("vx-", bridge.removeprefix("br-"), unique_by=bridge)
    ops: list[Op] = [AddMachineVxlan(netns, dev, VNI_BASE + index, this.address, VXLAN_PORT,
                                     lab.underlay_mtu)]
    ops += [AddFdb(netns, dev, FLOOD, m.address) for m in others]
    ops += [SetLink(netns, dev, master=bridge)]
    return ops
