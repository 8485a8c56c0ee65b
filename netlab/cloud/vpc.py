"""VPCs: one router namespace per VPC, one Linux bridge per subnet (gateway address on it),
the VPC route table, and the machines plugged into subnets (VPC hosts, cluster nodes).

A route table holds the routes the network models ask for (a vpc-model node's pod CIDR),
the NAT gateway's default route, and the route entries a scenario writes under the VPC
(`routes:`, resolved by `route_entries` once the objects they name exist).

A router without a default route answers a packet for an address no route covers with ICMP
net unreachable, every time. The kernel's own answer (ip_error) is rate limited per sender
with global knobs a lab may not change (net.ipv4.route.error_cost/burst, root namespace
only): after five errors a sender gets silence, so the same blocked check would say
"unreachable" in one run and "dropped" in the next. So an nftables rule in each VPC router
answers first, before the routing decision (`fib daddr oif missing`), and the router's ICMP
errors are exempt from the ICMP rate limits (`icmp_ratemask=0`).
"""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.cloud.base import CloudObject
from netlab.lab.model import Attachment, Lab, VpcRoute
from netlab.plan.ops import AddAddress, AddLink, AddNetns, AddRoute, AddVeth, NftApply, Op, SetLink, Sysctl

DEFAULT = IPv4Network("0.0.0.0/0")


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


def route_entries(s, lab: Lab, ctx) -> None:
    """The route entries a scenario writes into each VPC's route table: a destination and a
    named next hop (a peering connection of this VPC, or its NAT gateway)."""
    paths = [("vpc",)] + [("vpcs", i) for i in range(len(s.vpcs))]
    for vi, (vpath, spec, vpc) in enumerate(zip(paths, s.all_vpcs(), lab.vpcs, strict=True)):
        for i, entry in enumerate(spec.routes):
            path = vpath + ("routes", i)
            owner = f"{'vpc' if vi == 0 else f'vpcs[{vi - 1}]'}.routes[{i}]"
            kind, _, name = entry.nexthop.partition("/")
            if kind == "peering":
                peering = next((p for p in lab.peerings if p.name == name), None)
                if peering is None:
                    raise ctx.error(path + ("nexthop",), f"no peering '{name}'; peerings: "
                                                         + (", ".join(p.name for p in lab.peerings) or "none"))
                if vpc.name not in peering.vpcs:
                    raise ctx.error(path + ("nexthop",), f"peering '{name}' connects {' and '.join(peering.vpcs)}, "
                                                         f"not VPC '{vpc.name}'")
                nexthop = peering.side(vpc.name)[2]
            elif kind == "natgw":
                gw = next((g for g in lab.nat_gateways if g.name == name and g.vpc == vpc.name), None)
                if gw is None:
                    raise ctx.error(path + ("nexthop",), f"VPC '{vpc.name}' has no NAT gateway '{name}'; its NAT "
                                    "gateways: " + (", ".join(g.name for g in lab.nat_gateways
                                                              if g.vpc == vpc.name) or "none"))
                nexthop = gw.vpc_link.address.ip
            else:
                raise ctx.error(path + ("nexthop",), f"'{entry.nexthop}' is not a next hop; write "
                                                     "peering/<name> or natgw/<name>")
            local = next((sn for sn in vpc.subnets if entry.destination.overlaps(sn.cidr)), None)
            if local is not None:
                raise ctx.error(path + ("destination",), f"{entry.destination} overlaps subnet '{local.name}' "
                                                         f"({local.cidr}) of VPC '{vpc.name}', which it reaches itself")
            clash = next((r for r in vpc.routes if r.destination == entry.destination), None)
            if clash is not None:
                raise ctx.error(path + ("destination",), f"VPC '{vpc.name}' already routes {entry.destination} "
                                                         f"(for {clash.owner})")
            vpc.routes.append(VpcRoute(destination=entry.destination, nexthop=nexthop,
                                       owner=owner, target=entry.nexthop))


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
            ops.append(no_route_reject(lab.name, ns))
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
