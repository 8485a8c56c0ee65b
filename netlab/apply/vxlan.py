"""Kernel VXLAN devices with static FDB and neighbour entries (the tunnel model's
`switch: linux-bridge`, what Flannel's vxlan backend programs), over netlink."""

from __future__ import annotations

import subprocess

from pyroute2.netlink.rtnl.ndmsg import NTF_SELF

from netlab.apply import executor
from netlab.errors import ApplyError
from netlab.plan import AddFdb, AddNeigh, AddVxlan

NUD_PERMANENT = 0x80


def add_vxlan(ctx: executor.Context, op: AddVxlan) -> None:
    kwargs = {"address": op.address} if op.address else {}
    ctx.nl.ipr(op.netns).link("add", ifname=op.ifname, kind="vxlan", mtu=op.mtu, vxlan_id=op.vni,
                              vxlan_local=str(op.local), vxlan_link=ctx.nl.index(op.netns, op.dev),
                              vxlan_port=op.port, vxlan_learning=1 if op.learning else 0, **kwargs)


def add_fdb(ctx: executor.Context, op: AddFdb) -> None:
    ctx.nl.ipr(op.netns).fdb("append", ifindex=ctx.nl.index(op.netns, op.ifname), lladdr=op.mac,
                             dst=str(op.dst), state=NUD_PERMANENT, flags=NTF_SELF)


def add_neigh(ctx: executor.Context, op: AddNeigh) -> None:
    ctx.nl.ipr(op.netns).neigh("replace", ifindex=ctx.nl.index(op.netns, op.ifname), dst=str(op.ip),
                               lladdr=op.mac, state=NUD_PERMANENT)


executor.register(AddVxlan, add_vxlan)
executor.register(AddFdb, add_fdb)
executor.register(AddNeigh, add_neigh)


def show(netns: str, device: str, bridge: str) -> list[tuple[str, str]]:
    """A linux-bridge node as (title, text) sections, in iproute2's own words."""
    commands = [["ip", "-n", netns, "-d", "link", "show", device],
                ["bridge", "-n", netns, "fdb", "show", "dev", device],
                ["ip", "-n", netns, "neigh", "show", "dev", device],
                ["ip", "-n", netns, "route", "show"],
                ["bridge", "-n", netns, "link", "show"],
                ["ip", "-n", netns, "-s", "link", "show", device]]
    out = []
    for argv in commands:
        done = subprocess.run(argv, text=True, capture_output=True, timeout=10)
        if done.returncode != 0:
            raise ApplyError(f"{' '.join(argv)}: {done.stderr.strip()}")
        out.append((" ".join(a for a in argv if a not in ("-n", netns)), done.stdout))
    return out
