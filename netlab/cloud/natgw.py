"""NAT gateways: SNAT rules that take a VPC subnet's traffic to the internet from one of the
gateway's EIPs, for ports without an EIP of their own.

As in the service, a NAT gateway belongs to one VPC (one per VPC) and the VPC route table
gets a default route to it (`0.0.0.0/0 → natgw/<name>`, unless the scenario writes its own
0.0.0.0/0 entry). A SNAT rule's source must be a VPC subnet of that VPC (or a CIDR inside
one): an eni cluster's pod subnet is one; the container CIDR of a vpc or tunnel cluster is
not (its pods leave as their node anyway, so the node subnet's rule covers them), and such
a rule is refused with that reason. A port with an EIP of its own leaves through its EIP,
not through the gateway (`netlab.cloud.eip`: the VPC router checks the port's EIP before
the default route).

Realisation: a namespace `natgw/<name>` linked to the VPC router (`vpc0`) and to the VPC's
internet gateway (`igw0`, which holds the gateway's EIPs; the gateway routes them here).
Its nftables table `netlab-natgw` is rendered whole by `ruleset` and replaced in one
`nft -f` transaction, at `up` and by `netlab nat` on a running lab: per rule, `snat to
<eip>` for the rule's source on the way out; traffic that matches no rule is dropped, as
the service's gateway does.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from pydantic import Field

from netlab.cloud import links
from netlab.cloud.base import CloudObject
from netlab.cloud.eip import EipPool
from netlab.cloud.internet import igw_of
from netlab.cloud.vpc import DEFAULT, no_icmp_ratelimit
from netlab.lab import naming
from netlab.lab.model import EipInfo, Lab, NatGatewayInfo, SnatRuleInfo, VpcRoute
from netlab.plan.ops import AddAddress, AddNetns, AddRoute, NftApply, Op, SetLink, Sysctl
from netlab.scenario.types import Address, Name, Strict

TABLE = "netlab-natgw"
VPC_IF, IGW_IF = "vpc0", "igw0"  # the gateway's ends of its two links


class SnatRule(Strict):
    source: str = Field(description="a subnet of the gateway's VPC (its name, or a CIDR inside it)")
    eip: Address | None = Field(default=None, description="one of the gateway's EIPs; default: its first")


class NatGateway(Strict):
    name: Name
    vpc: Name | None = Field(default=None, description="default: the first VPC")
    eips: list[Address] = Field(default_factory=list,
                                description="its EIPs (from internet.eip_pool); default: one, allocated")
    snat_rules: list[SnatRule] = Field(default_factory=list)


class NatError(ValueError):
    def __init__(self, message: str, field: str = "source"):
        super().__init__(message)
        self.field = field  # the SNAT rule's field at fault


def netns_of(lab_name: str, name: str) -> str:
    return naming.netns(lab_name, "natgw", name)


def snat_rule(lab: Lab, gw: NatGatewayInfo, source: str, eip: IPv4Address | None) -> SnatRuleInfo:
    """A SNAT rule of `gw` as the service accepts it, or NatError saying why not."""
    vpc = lab.vpc_named(gw.vpc)
    named = next((s for v in lab.vpcs for s in v.subnets if s.name == source), None)
    if named is not None:
        cidr = named.cidr
    else:
        try:
            cidr = IPv4Network(source)
        except ValueError:
            raise NatError(f"'{source}' is neither a subnet of VPC '{vpc.name}' ("
                           + ", ".join(s.name for s in vpc.subnets) + ") nor a CIDR") from None
    subnet = next((s for s in vpc.subnets if cidr.subnet_of(s.cidr)), None)
    if subnet is None:
        raise NatError(_not_a_subnet(lab, vpc.name, cidr))
    if eip is None:
        eip = gw.eips[0]
    if eip not in gw.eips:
        raise NatError(f"{eip} is not an EIP of NAT gateway '{gw.name}' ({', '.join(map(str, gw.eips))})", "eip")
    for other in gw.snat_rules:
        if cidr.overlaps(other.source):
            raise NatError(f"{cidr} overlaps the SNAT rule for {other.subnet} ({other.source} → {other.eip}); "
                           "a subnet takes one SNAT rule")
    return SnatRuleInfo(source=cidr, subnet=subnet.name, eip=eip)


def _not_a_subnet(lab: Lab, vpc: str, cidr: IPv4Network) -> str:
    for c in lab.clusters:
        if cidr.overlaps(c.container_cidr) and c.model != "eni":
            node_subnets = ", ".join(sorted({n.eth0.subnet for n in c.nodes}))
            return (f"{cidr} is the container CIDR of cluster '{c.name}' (model {c.model}), not a VPC subnet: "
                    f"a SNAT rule's source must be a VPC subnet, and pods of a {c.model} cluster leave as "
                    f"their node anyway; write the node subnet ({node_subnets})")
    other = next((v for v in lab.vpcs if v.name != vpc and any(cidr.subnet_of(s.cidr) for s in v.subnets)), None)
    if other is not None:
        return f"{cidr} is in VPC '{other.name}', not in the NAT gateway's VPC '{vpc}'"
    return (f"{cidr} is not inside a subnet of VPC '{vpc}' ("
            + ", ".join(f"{s.name} {s.cidr}" for s in lab.vpc_named(vpc).subnets)
            + "); a SNAT rule's source must be a VPC subnet")


class NatGatewayObject(CloudObject):
    name = "natgw"

    # -- resolve --------------------------------------------------------------------------
    def resolve(self, scenario, lab: Lab, ctx) -> None:
        if not scenario.nat_gateways:
            return
        if lab.internet is None:
            raise ctx.error(("nat_gateways",), "a NAT gateway needs `internet:` (where its EIPs lead)")
        pool = EipPool(scenario, lab, ctx)
        for gi, spec in enumerate(scenario.nat_gateways):
            path = ("nat_gateways", gi)
            vpc_name = spec.vpc or lab.vpc.name
            if not any(v.name == vpc_name for v in lab.vpcs):
                raise ctx.error(path + ("vpc",),
                                f"unknown VPC '{vpc_name}'; VPCs: {', '.join(v.name for v in lab.vpcs)}")
            first = next((g for g in lab.nat_gateways if g.vpc == vpc_name), None)
            if first is not None:
                raise ctx.error(path + ("vpc",), f"VPC '{vpc_name}' already has NAT gateway '{first.name}'; "
                                                 "a VPC takes one (its default route points there)")
            if any(g.name == spec.name for g in lab.nat_gateways):
                raise ctx.error(path + ("name",), f"duplicate NAT gateway name '{spec.name}'")
            vpc = lab.vpc_named(vpc_name)
            igw = igw_of(lab, vpc_name)
            ns = netns_of(lab.name, spec.name)
            eips = list(spec.eips) or [pool.take(None, path + ("eips",))]
            gw = NatGatewayInfo(
                name=spec.name, vpc=vpc_name, netns=ns, eips=eips,
                vpc_link=links.new_link(lab, ns, VPC_IF, vpc.netns, naming.ifname("ngw-", spec.name)),
                igw_link=links.new_link(lab, ns, IGW_IF, igw.netns, naming.ifname("ngw-", spec.name), offset=1))
            lab.eips += [EipInfo(ip=ip, bind=gw.ref, kind="natgw", private=None, vpc=vpc_name) for ip in eips]
            for ri, rule in enumerate(spec.snat_rules):
                try:
                    gw.snat_rules.append(snat_rule(lab, gw, rule.source, rule.eip))
                except NatError as e:
                    raise ctx.error(path + ("snat_rules", ri, e.field), str(e)) from None
            lab.nat_gateways.append(gw)
            vpc_spec = scenario.all_vpcs()[lab.vpcs.index(vpc)]
            if not any(r.destination.prefixlen == 0 for r in vpc_spec.routes):
                vpc.routes.append(VpcRoute(destination=DEFAULT, nexthop=gw.vpc_link.address.ip,
                                           owner=gw.ref, target=gw.ref))

    # -- plan -----------------------------------------------------------------------------
    def fabric(self, lab: Lab) -> list[Op]:
        ops: list[Op] = []
        for gw in lab.nat_gateways:
            ops += [AddNetns(gw.netns), Sysctl(gw.netns, "net.ipv4.ip_forward", "1"), no_icmp_ratelimit(gw.netns),
                    SetLink(gw.netns, "lo")]
            ops += links.link_ops(gw.vpc_link, lab.underlay_mtu) + links.link_ops(gw.igw_link, lab.underlay_mtu)
            # Its EIPs are its own addresses: what arrives for them without a connection to
            # un-SNAT is answered here (refused), not routed back to the internet gateway.
            ops += [AddAddress(gw.netns, IGW_IF, IPv4Interface(f"{ip}/32")) for ip in gw.eips]
        return ops

    def routes(self, lab: Lab) -> list[Op]:
        """The gateway: its VPC to the router, the rest to the internet gateway; the internet
        gateway: the NAT gateway's EIPs to it."""
        ops: list[Op] = []
        for gw in lab.nat_gateways:
            vpc = lab.vpc_named(gw.vpc)
            ops += [AddRoute(gw.netns, vpc.cidr, via=gw.vpc_link.peer_address.ip),
                    AddRoute(gw.netns, DEFAULT, via=gw.igw_link.peer_address.ip)]
            ops += [AddRoute(gw.igw_link.peer_netns, IPv4Network(f"{ip}/32"), via=gw.igw_link.address.ip)
                    for ip in gw.eips]
        return ops

    def edge(self, lab: Lab) -> list[Op]:
        return [apply_op(lab, gw) for gw in lab.nat_gateways]


def change(lab: Lab, name: str, *, add: str | None = None, remove: str | None = None,
           eip: IPv4Address | None = None) -> tuple[Lab, NatGatewayInfo, list[Op]]:
    """A running lab's NAT gateway with one SNAT rule added or removed (`netlab nat`): the
    lab after the change, the gateway, and the op that replaces its ruleset."""
    gw = next((g for g in lab.nat_gateways if g.name == name), None)
    if gw is None:
        raise NatError(f"lab {lab.name} has no NAT gateway '{name}'; NAT gateways: "
                       + (", ".join(g.name for g in lab.nat_gateways) or "none"), "natgw")
    rules = list(gw.snat_rules)
    if remove is not None:
        gone = next((r for r in rules if remove in (r.subnet, str(r.source))), None)
        if gone is None:
            raise NatError(f"NAT gateway '{name}' has no SNAT rule for '{remove}'; its rules: "
                           + (", ".join(f"{r.subnet} ({r.source})" for r in rules) or "none"))
        rules.remove(gone)
    if add is not None:
        rules.append(snat_rule(lab, gw, add, eip))
    new_gw = gw.model_copy(update={"snat_rules": rules})
    new_lab = lab.model_copy(update={"nat_gateways": [new_gw if g.name == name else g for g in lab.nat_gateways]})
    return new_lab, new_gw, [apply_op(new_lab, new_gw)]


def apply_op(lab: Lab, gw: NatGatewayInfo) -> NftApply:
    return NftApply(gw.netns, ruleset(lab, gw), purpose=f"NAT gateway {gw.name}: {len(gw.snat_rules)} SNAT rules")


def ruleset(lab: Lab, gw: NatGatewayInfo) -> str:
    """The gateway's whole `netlab-natgw` table, replacing any previous one in one transaction."""
    out = [f"# netlab {lab.name}: NAT gateway {gw.name} of VPC {gw.vpc}",
           f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
           "\tchain forward {", "\t\ttype filter hook forward priority filter; policy accept;"]
    out += [f'\t\toifname "{IGW_IF}" ip saddr {r.source} accept comment "SNAT rule: {r.subnet}"'
            for r in gw.snat_rules]
    out += [f'\t\toifname "{IGW_IF}" counter drop comment "no SNAT rule for this source"', "\t}",
            "\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat; policy accept;"]
    out += [f'\t\toifname "{IGW_IF}" ip saddr {r.source} snat to {r.eip}' for r in gw.snat_rules]
    out += ["\t}", "}"]
    return "\n".join(out) + "\n"


OBJECT = NatGatewayObject()
