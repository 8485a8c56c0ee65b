"""The VPC: a router namespace, one Linux bridge per subnet (gateway address on it), the
VPC route table, and the machines plugged into subnets (VPC hosts, cluster nodes).

The router has no default route: a packet for an address no route covers is answered
with ICMP net unreachable, every time. The kernel's own answer (ip_error) is rate limited
per sender with global knobs a lab may not change (net.ipv4.route.error_cost/burst, root
namespace only): after five errors a sender gets silence, so the same blocked check would
say "unreachable" in one run and "dropped" in the next. So an nftables rule in the router
answers first, before the routing decision (`fib daddr oif missing`), and the router's
ICMP errors are exempt from the ICMP rate limits (`icmp_ratemask=0`).
"""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.lab.model import Attachment, Lab
from netlab.plan import AddAddress, AddLink, AddNetns, AddRoute, AddVeth, NftApply, Op, SetLink, Sysctl

DEFAULT = IPv4Network("0.0.0.0/0")


def router_ops(lab: Lab) -> list[Op]:
    ns = lab.vpc.netns
    ops: list[Op] = [AddNetns(ns), Sysctl(ns, "net.ipv4.ip_forward", "1"), no_icmp_ratelimit(ns), SetLink(ns, "lo")]
    for sn in lab.vpc.subnets:
        ops += [AddLink(ns, sn.bridge, "bridge", mtu=lab.underlay_mtu),
                AddAddress(ns, sn.bridge, sn.gateway),
                SetLink(ns, sn.bridge)]
    return ops + [no_route_reject(lab.name, ns)]


def no_icmp_ratelimit(netns: str) -> Sysctl:
    """Routers and nodes answer every probe with its ICMP error: no ICMP type is rate
    limited (neither the per-peer limit nor the host-wide budget every namespace shares), so
    a blocked check sees the same REJECT or unreachable every time."""
    return Sysctl(netns, "net.ipv4.icmp_ratemask", "0")


def no_route_reject(lab: str, netns: str) -> NftApply:
    """ICMP net unreachable for a unicast destination the router has no route to, sent by
    netfilter (not rate limited) instead of the routing code (rate limited per sender)."""
    rules = (f"table ip netlab {{\n"
             f"  comment \"netlab {lab}: the VPC router answers what it cannot route\"\n"
             f"  chain no-route {{\n"
             f"    type filter hook prerouting priority 0; policy accept;\n"
             f"    fib daddr type unicast fib daddr oif missing reject with icmp type net-unreachable\n"
             f"  }}\n"
             f"}}\n")
    return NftApply(netns, rules, purpose="VPC router: ICMP net unreachable where no route leads")


def attach_ops(lab: Lab, netns: str, eth0: Attachment, *, address_on: str | None = "eth0") -> list[Op]:
    """Plug a machine's `eth0` into its subnet's bridge; give it its address and a
    default route via the subnet gateway (skipped when `address_on` is None, for models
    that move the underlay address elsewhere)."""
    vpc = lab.vpc.netns
    ops: list[Op] = [
        AddVeth(netns, "eth0", vpc, eth0.port, lab.underlay_mtu),
        SetLink(vpc, eth0.port, master=lab.vpc.subnet(eth0.subnet).bridge),
        SetLink(netns, "lo"),
        SetLink(netns, "eth0"),
    ]
    if address_on:
        ops += [AddAddress(netns, address_on, eth0.address),
                AddRoute(netns, DEFAULT, via=eth0.gateway, dev=address_on)]
    return ops


def host_ops(lab: Lab) -> list[Op]:
    ops: list[Op] = []
    for h in lab.hosts:
        ops += [AddNetns(h.netns)] + attach_ops(lab, h.netns, h.eth0)
    return ops


def route_ops(lab: Lab) -> list[Op]:
    """The VPC route table: custom routes (e.g. a node's pod CIDR via the node)."""
    return [AddRoute(lab.vpc.netns, r.destination, via=r.nexthop) for r in lab.vpc.routes]
