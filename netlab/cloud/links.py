"""The cloud's own point-to-point links (internet gateway, NAT gateway, peering): a veth
between two lab namespaces, each end addressed from the transit range.

Transit addresses come from 169.254.0.0/16, one /30 per link in the order the lab
allocates them: link-local addresses are never routed beyond a link, so they cannot be
mistaken for VPC, container or public addresses, and nothing a user writes can overlap them.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

from netlab.lab.model import Lab, Link
from netlab.plan.ops import AddAddress, AddVeth, Op, SetLink

TRANSIT = IPv4Network("169.254.0.0/16")
TRANSIT_PREFIX = 30


def all_links(lab: Lab) -> list[Link]:
    out = [ln for g in lab.igws for ln in (g.vpc_link, g.internet_link)]
    out += [ln for n in lab.nat_gateways for ln in (n.vpc_link, n.igw_link)]
    return out + [p.link for p in lab.peerings]


def new_link(lab: Lab, netns: str, ifname: str, peer_netns: str, peer_ifname: str, offset: int = 0) -> Link:
    """The next free /30 of the transit range (`offset` more for an object allocating
    several links at once): `.1` on this side, `.2` on the peer's."""
    index = len(all_links(lab)) + offset
    block = IPv4Network(f"{TRANSIT.network_address + index * 2 ** (32 - TRANSIT_PREFIX)}/{TRANSIT_PREFIX}")
    return Link(netns=netns, ifname=ifname, peer_netns=peer_netns, peer_ifname=peer_ifname,
                address=IPv4Interface(f"{block.network_address + 1}/{TRANSIT_PREFIX}"),
                peer_address=IPv4Interface(f"{block.network_address + 2}/{TRANSIT_PREFIX}"))


def link_ops(link: Link, mtu: int) -> list[Op]:
    return [AddVeth(link.netns, link.ifname, link.peer_netns, link.peer_ifname, mtu),
            AddAddress(link.netns, link.ifname, link.address),
            AddAddress(link.peer_netns, link.peer_ifname, link.peer_address),
            SetLink(link.netns, link.ifname),
            SetLink(link.peer_netns, link.peer_ifname)]
