"""VPCs: one router namespace per VPC, one Linux bridge per subnet (gateway address on it),
the VPC route table, and the machines plugged into subnets (VPC hosts, cluster nodes)."""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.cloud.base import CloudObject
from netlab.lab.model import Attachment, Lab
from netlab.plan.ops import AddAddress, AddLink, AddNetns, AddRoute, AddVeth, Op, SetLink, Sysctl

DEFAULT = IPv4Network("0.0.0.0/0")


def no_icmp_ratelimit(netns: str) -> Sysctl:
    """Routers and nodes answer every probe with its ICMP error (no 1/s per-peer limit), so
    a blocked check sees the same REJECT or unreachable every time."""
    return Sysctl(netns, "net.ipv4.icmp_ratelimit", "0")


def attach_ops(lab: Lab, netns: str, eth0: Attachment, *, address_on: str | None = "eth0") -> list[Op]:
    """Plug a machine's `eth0` into its subnet's bridge; give it its address and a
    default route via the subnet gateway (skipped when `address_on` is None, for models
    that move the underlay address elsewhere)."""
    vpc = lab.vpc_of_subnet(eth0.subnet)
    ops: list[Op] = [
        AddVeth(netns, "eth0", vpc.netns, eth0.port, lab.underlay_mtu),
        SetLink(vpc.netns, eth0.port, master=vpc.subnet(eth0.subnet).bridge),
        SetLink(netns, "lo"),
        SetLink(netns, "eth0"),
    ]
    if address_on:
        ops += [AddAddress(netns, address_on, eth0.address),
                AddRoute(netns, DEFAULT, via=eth0.gateway, dev=address_on)]
    return ops


class Vpc(CloudObject):
    name = "vpc"

    def fabric(self, lab: Lab) -> list[Op]:
        """Every VPC's router and subnet bridges."""
        ops: list[Op] = []
        for vpc in lab.vpcs:
            ns = vpc.netns
            ops += [AddNetns(ns), Sysctl(ns, "net.ipv4.ip_forward", "1"), no_icmp_ratelimit(ns), SetLink(ns, "lo")]
            for sn in vpc.subnets:
                ops += [AddLink(ns, sn.bridge, "bridge", mtu=lab.underlay_mtu),
                        AddAddress(ns, sn.bridge, sn.gateway),
                        SetLink(ns, sn.bridge)]
        return ops

    def machines(self, lab: Lab) -> list[Op]:
        """VPC hosts (intranet clients and servers) on their subnets."""
        ops: list[Op] = []
        for h in lab.hosts:
            ops += [AddNetns(h.netns)] + attach_ops(lab, h.netns, h.eth0)
        return ops

    def routes(self, lab: Lab) -> list[Op]:
        """Each VPC's route table: custom routes (e.g. a node's pod CIDR via the node)."""
        return [AddRoute(vpc.netns, r.destination, via=r.nexthop) for vpc in lab.vpcs for r in vpc.routes]


OBJECT = Vpc()
