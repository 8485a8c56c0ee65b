"""Netlink work inside lab namespaces, through pyroute2.

One `Netlink` session keeps one rtnetlink channel per namespace, opened by stepping this
thread into the namespace (see `netlab.linux`), so a whole lab is built over a handful of
sockets without forking a helper per namespace (pyroute2's own `netns=` does fork).
"""

from __future__ import annotations

import os
import socket
from ipaddress import IPv4Interface

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg.plugins.ipvlan import ipvlan as _ipvlan_nla

from netlab import linux
from netlab.errors import ApplyError
from netlab.plan.ops import (AddAddress, AddLink, AddRoute, AddRule, AddVeth, DelLink, MoveLink, SetBridgePort,
                             SetLink)

RT_SCOPE_LINK = 253
RTNH_F_ONLINK = 4
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}  # include/uapi/linux/if_link.h IPVLAN_F_*

# pyroute2 0.9 knows IFLA_IPVLAN_MODE but not IFLA_IPVLAN_FLAGS (bridge/private/vepa, Linux
# 4.15); declaring the attribute lets `ipvlan_flags=` travel like `ipvlan_mode=`.
if not any(name == "IFLA_IPVLAN_FLAGS" for name, _ in _ipvlan_nla.nla_map):
    _ipvlan_nla.nla_map = tuple(_ipvlan_nla.nla_map) + (("IFLA_IPVLAN_FLAGS", "uint16"),)
    _ipvlan_nla._nlmsg_base__compiled_nla = False  # recompiled from the map on next use


def _ipvlan_args(mode: str) -> dict:
    """`l2`, `l2 vepa`: iproute2's words for the mode and the flag."""
    words = mode.split()
    out = {"ipvlan_mode": IPVLAN_MODES[words[0]]}
    if len(words) > 1:
        out["ipvlan_flags"] = IPVLAN_FLAGS[words[1]]
    return out


_MODE_ARGS = {"macvlan": lambda mode: {"macvlan_mode": mode},
              "macvtap": lambda mode: {"macvtap_mode": mode},
              "ipvlan": _ipvlan_args}


class Netlink:
    def __init__(self) -> None:
        self._ipr: dict[str, IPRoute] = {}
        self._fds: dict[str, int] = {}
        self._index: dict[tuple[str, str], int] = {}

    def close(self) -> None:
        for ipr in self._ipr.values():
            ipr.close()
        for fd in self._fds.values():
            os.close(fd)
        self._ipr.clear()
        self._fds.clear()
        self._index.clear()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- channels -------------------------------------------------------------
    def fd(self, netns: str) -> int:
        if netns not in self._fds:
            self._fds[netns] = linux.open_netns(netns)
        return self._fds[netns]

    def ipr(self, netns: str) -> IPRoute:
        if netns not in self._ipr:
            with linux.entered(self.fd(netns)):
                self._ipr[netns] = IPRoute()
        return self._ipr[netns]

    def index(self, netns: str, ifname: str) -> int:
        key = (netns, ifname)
        if key not in self._index:
            found = self.ipr(netns).link_lookup(ifname=ifname)
            if not found:
                raise ApplyError(f"{netns}: no interface {ifname}")
            self._index[key] = found[0]
        return self._index[key]

    def forget(self, netns: str) -> None:
        """Drop cached state of a namespace (after it was removed)."""
        ipr = self._ipr.pop(netns, None)
        if ipr is not None:
            ipr.close()
        fd = self._fds.pop(netns, None)
        if fd is not None:
            os.close(fd)
        for key in [k for k in self._index if k[0] == netns]:
            del self._index[key]

    # -- operations -----------------------------------------------------------
    def add_link(self, op: AddLink) -> None:
        kwargs: dict = {"mtu": op.mtu} if op.mtu else {}
        if op.address:
            kwargs["address"] = op.address
        home = op.parent_netns or op.netns  # the namespace the request is made from
        if op.parent:
            kwargs["link"] = self.index(home, op.parent)
        if op.parent_netns:
            kwargs["net_ns_fd"] = self.fd(op.netns)
        if op.mode:
            # pyroute2 speaks iproute2's words: macvlan_mode="bridge", ipvlan_mode=<int>.
            kwargs.update(_MODE_ARGS[op.kind](op.mode))
        if op.vlan_id is not None:
            kwargs["vlan_id"] = op.vlan_id
        self.ipr(home).link("add", ifname=op.ifname, kind=op.kind, **kwargs)

    def del_link(self, op: DelLink) -> None:
        self.ipr(op.netns).link("del", index=self.index(op.netns, op.ifname))
        self._index.pop((op.netns, op.ifname), None)

    def set_bridge_port(self, op: SetBridgePort) -> None:
        # IFLA_BRPORT_MODE is the hairpin flag (`bridge link set ... hairpin on`).
        self.ipr(op.netns).brport("set", index=self.index(op.netns, op.ifname), mode=int(op.hairpin))

    def move_link(self, op: MoveLink) -> None:
        kwargs: dict = {"net_ns_fd": self.fd(op.to_netns)}
        if op.new_ifname:
            kwargs["ifname"] = op.new_ifname
        self.ipr(op.netns).link("set", index=self.index(op.netns, op.ifname), **kwargs)
        self._index.pop((op.netns, op.ifname), None)

    def add_veth(self, op: AddVeth) -> None:
        # Created from inside the first namespace with the peer placed straight into the
        # second: neither end ever exists in the host's namespace.
        self.ipr(op.netns).link("add", ifname=op.ifname, kind="veth", mtu=op.mtu,
                                peer={"ifname": op.peer_ifname, "mtu": op.mtu,
                                      "net_ns_fd": self.fd(op.peer_netns)})

    def set_link(self, op: SetLink) -> None:
        kwargs: dict = {"state": "up" if op.up else "down"}
        if op.master:
            kwargs["master"] = self.index(op.netns, op.master)
        if op.address:
            kwargs["address"] = op.address
        index = self.index(op.netns, op.ifname)
        if op.name:
            kwargs["ifname"] = op.name  # the kernel renames before it brings the device up
        self.ipr(op.netns).link("set", index=index, **kwargs)
        if op.name:
            self._index.pop((op.netns, op.ifname), None)
            self._index[(op.netns, op.name)] = index
        if op.hairpin:
            self.ipr(op.netns).brport("set", index=index, mode=1)  # IFLA_BRPORT_MODE

    def add_address(self, op: AddAddress) -> None:
        self.ipr(op.netns).addr("add", index=self.index(op.netns, op.ifname),
                                address=str(op.address.ip), prefixlen=op.address.network.prefixlen)

    def add_route(self, op: AddRoute) -> None:
        kwargs: dict = {"dst": str(op.destination)}
        if op.via:
            kwargs["gateway"] = str(op.via)
        if op.dev:
            kwargs["oif"] = self.index(op.netns, op.dev)
        if op.src:
            kwargs["prefsrc"] = str(op.src)
        if op.scope_link:
            kwargs["scope"] = RT_SCOPE_LINK
        if op.onlink:
            kwargs["flags"] = RTNH_F_ONLINK
        if op.table is not None:
            kwargs["table"] = op.table
        self.ipr(op.netns).route("add", **kwargs)

    def add_rule(self, op: AddRule) -> None:
        kwargs: dict = {"priority": op.priority, "table": op.table}
        if op.src is not None:
            kwargs.update(src=str(op.src.network_address), src_len=op.src.prefixlen)
        if op.suppress_prefixlength is not None:
            kwargs["suppress_prefixlen"] = op.suppress_prefixlength
        if op.dst is not None:
            kwargs.update(dst=str(op.dst.network_address), dst_len=op.dst.prefixlen)
        if op.ipproto is not None:
            kwargs["ip_proto"] = socket.getprotobyname(op.ipproto)
        if op.dport is not None:
            kwargs["dport_range"] = f"{op.dport}:{op.dport}"
        self.ipr(op.netns).rule("add", **kwargs)

    # -- reading --------------------------------------------------------------
    def addresses(self, netns: str) -> list[tuple[str, IPv4Interface]]:
        """(ifname, address) of every IPv4 address in the namespace, loopback excepted."""
        ipr = self.ipr(netns)
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        out = []
        for a in ipr.get_addr(family=2):
            ifname = names.get(a["index"], "?")
            if ifname == "lo" and a.get_attr("IFA_ADDRESS").startswith("127."):
                continue
            out.append((ifname, IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")))
        return out


def describe(e: Exception) -> str:
    if isinstance(e, NetlinkError):
        return f"{os.strerror(e.code) if e.code else e} (errno {e.code})"
    if isinstance(e, OSError) and e.errno:
        return os.strerror(e.errno)
    return str(e)

