"""Kernel VXLAN devices with static FDB and neighbour entries (the tunnel model's
`switch: linux-bridge`, what Flannel's vxlan backend programs; the subnets of a lab split
across machines), over netlink."""

from __future__ import annotations

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF

from netlab.apply.context import Context
from netlab.plan.ops import AddFdb, AddMachineVxlan, AddNeigh, AddVxlan

NUD_PERMANENT = 0x80


def add_vxlan(ctx: Context, op: AddVxlan) -> None:
    kwargs = {"address": op.address} if op.address else {}
    ctx.nl.ipr(op.netns).link("add", ifname=op.ifname, kind="vxlan", mtu=op.mtu, vxlan_id=op.vni,
                              vxlan_local=str(op.local), vxlan_link=ctx.nl.index(op.netns, op.dev),
                              vxlan_port=op.port, vxlan_learning=1 if op.learning else 0, **kwargs)


def add_machine_vxlan(ctx: Context, op: AddMachineVxlan) -> None:
    # Created from this process's own namespace with IFLA_NET_NS_FD: the device appears
    # directly in the lab namespace, while the kernel binds its UDP socket here.
    with IPRoute() as ipr:
        ipr.link("add", ifname=op.ifname, kind="vxlan", mtu=op.mtu, vxlan_id=op.vni,
                 vxlan_local=str(op.local), vxlan_port=op.port, vxlan_learning=1,
                 net_ns_fd=ctx.nl.fd(op.netns))


def add_fdb(ctx: Context, op: AddFdb) -> None:
    ctx.nl.ipr(op.netns).fdb("append", ifindex=ctx.nl.index(op.netns, op.ifname), lladdr=op.mac,
                             dst=str(op.dst), state=NUD_PERMANENT, flags=NTF_SELF)


def add_neigh(ctx: Context, op: AddNeigh) -> None:
    ctx.nl.ipr(op.netns).neigh("replace", ifindex=ctx.nl.index(op.netns, op.ifname), dst=str(op.ip),
                               lladdr=op.mac, state=NUD_PERMANENT)


HANDLERS = {AddVxlan: add_vxlan, AddMachineVxlan: add_machine_vxlan, AddFdb: add_fdb, AddNeigh: add_neigh}
