"""Netlink work inside lab namespaces, through pyroute2.

One `Netlink` session keeps one rtnetlink channel per namespace, opened by stepping this
thread into the namespace (see `netlab.linux`), so a whole lab is built over a handful of
sockets without forking a helper per namespace (pyroute2's own `netns=` does fork).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Interface

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab import linux
from netlab.errors import ApplyError
from netlab.plan.ops import AddAddress, AddLink, AddRoute, AddRule, AddVeth, MoveLink, SetLink

RT_SCOPE_LINK = 253
RTNH_F_ONLINK = 4
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
_MODE_ARGS = {"macvlan": lambda mode: {"macvlan_mode": mode},
              "macvtap": lambda mode: {"macvtap_mode": mode},
              "ipvlan": lambda mode: {"ipvlan_mode": IPVLAN_MODES[mode]}}


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
        if op.parent:
            kwargs["link"] = self.index(op.netns, op.parent)
        if op.mode:
            # pyroute2 speaks iproute2's words: macvlan_mode="bridge", ipvlan_mode=<int>.
            kwargs.update(_MODE_ARGS[op.kind](op.mode))
        if op.vlan_id is not None:
            kwargs["vlan_id"] = op.vlan_id
        self.ipr(op.netns).link("add", ifname=op.ifname, kind=op.kind, **kwargs)

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
        self.ipr(op.netns).link("set", index=self.index(op.netns, op.ifname), **kwargs)
        if op.hairpin:
            self.ipr(op.netns).brport("set", index=self.index(op.netns, op.ifname), mode=1)  # IFLA_BRPORT_MODE

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

