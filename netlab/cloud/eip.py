"""EIPs: public addresses bound 1:1 to a port of the VPC — a node, a VPC host, a pod of an
eni cluster (the service's per-pod EIP) — or owned by a NAT gateway (`netlab.cloud.natgw`).

How the lab realises an EIP bound to a port with private address P:

- the internet routes the EIP (a /32) to the internet gateway of P's VPC;
- the gateway translates 1:1 (one nftables table, `netlab-eip`, rendered whole by `ruleset`
  and loaded with `nft -f`): EIP → P on the way in (DNAT), P → EIP on the way out (SNAT);
  its forward filter lets only public sources out (EIP-bound ports and NAT-gateway EIPs);
- the VPC router sends P's traffic for the internet to the gateway by policy routing:
  `ip rule from P lookup 100` (table 100: a default route to the gateway), after a rule
  `lookup main suppress_prefixlength 0`, so P still reaches every VPC, peering and NAT
  route of the main table and only what would take the default route goes to its EIP.
  This is how the service lets an EIP win over a NAT gateway: the EIP is a property of the
  port, checked before the route table's default route (which points to the NAT gateway).

A public client thus reaches a node's NodePort at the node's EIP, and a server the node (or
a pod SNATed to the node IP) calls sees the EIP.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pydantic import Field

from netlab.cloud.base import CloudObject
from netlab.cloud.internet import IGW_INET_IF, igw_of
from netlab.cloud.vpc import DEFAULT
from netlab.lab import ipam
from netlab.lab.model import EipInfo, IgwInfo, Lab
from netlab.plan.ops import AddRoute, AddRule, DelRoute, DelRule, NftApply, Op
from netlab.scenario.types import Address, Strict

EIP_TABLE = 100  # the VPC router's routing table for EIP-bound ports
RULE_MAIN_FIRST, RULE_EIP = 1000, 1100
MAIN_TABLE = 254
TABLE = "netlab-eip"


class EipError(ValueError):
    pass


class Eip(Strict):
    """An EIP bound to a port: `bind` names a node (`c1/node-1`), a VPC host (`ecs-1`), a
    pod of an eni cluster (`c1/web-0`) or an ELB (`elb/lb-1`)."""

    bind: str = Field(description="CLUSTER/NODE, HOST, CLUSTER/POD (eni clusters) or elb/NAME")
    ip: Address | None = Field(default=None, description="default: the next free address of internet.eip_pool")


class EipPool:
    """The EIP pool, with every address the scenario asks for by name claimed first."""

    def __init__(self, scenario, lab: Lab, ctx):
        self.pool = ipam.Pool(lab.internet.eip_pool)
        self.ctx = ctx
        self.owner: dict[IPv4Address, tuple] = {}
        explicit = [(("eips", i, "ip"), e.ip) for i, e in enumerate(scenario.eips) if e.ip]
        explicit += [(("nat_gateways", gi, "eips", k), ip) for gi, g in enumerate(scenario.nat_gateways)
                     for k, ip in enumerate(g.eips)]
        for path, ip in explicit:
            if not self.pool.usable(ip):
                raise ctx.error(path, f"{ip} is not an address of the EIP pool {lab.internet.eip_pool} "
                                      "(internet.eip_pool)")
            if ip in self.owner:
                raise ctx.error(path, f"EIP {ip} is already used on line {ctx.source.line(self.owner[ip])}")
            self.owner[ip] = path
            self.pool.claim(ip)
        for e in lab.eips:
            self.pool.claim(e.ip)

    def take(self, ip: IPv4Address | None, path: tuple) -> IPv4Address:
        if ip is not None:
            return ip
        found = self.pool.next()
        if found is None:
            raise self.ctx.error(path, f"the EIP pool {self.pool.cidr} has no free address left")
        return found


class EipObject(CloudObject):
    name = "eip"

    # -- resolve --------------------------------------------------------------------------
    def resolve(self, scenario, lab: Lab, ctx) -> None:
        if not scenario.eips:
            return
        if lab.internet is None:
            raise ctx.error(("eips",), "EIPs need `internet:` (the internet they face and the EIP pool)")
        pool = EipPool(scenario, lab, ctx)
        bound: dict[str, int] = {}
        for i, spec in enumerate(scenario.eips):
            path = ("eips", i)
            if spec.bind.startswith("elb/"):
                continue  # bound by the ELB object (netlab.cloud.elb), which resolves after this one
            try:
                kind, private, vpc = port_of(lab, spec.bind)
            except EipError as e:
                raise ctx.error(path + ("bind",), str(e)) from None
            if spec.bind in bound:
                raise ctx.error(path + ("bind",), f"{spec.bind} already has an EIP (line "
                                                  f"{ctx.source.line(('eips', bound[spec.bind]))}); a port takes one")
            bound[spec.bind] = i
            lab.eips.append(EipInfo(ip=pool.take(spec.ip, path), bind=spec.bind, kind=kind, private=private, vpc=vpc))

    # -- plan -----------------------------------------------------------------------------
    def routes(self, lab: Lab) -> list[Op]:
        """The internet routes every EIP to its VPC's gateway; each VPC router sends its
        EIP-bound ports' internet traffic to the gateway (policy routing)."""
        ops: list[Op] = []
        for e in lab.eips:
            igw = igw_of(lab, e.vpc)
            ops.append(AddRoute(lab.internet.netns, IPv4Network(f"{e.ip}/32"), via=igw.internet_link.address.ip))
        for igw in lab.igws:
            ports = port_eips(lab, igw)
            if not ports:
                continue
            router = lab.vpc_named(igw.vpc).netns
            ops += [AddRoute(router, DEFAULT, via=igw.vpc_link.address.ip, table=EIP_TABLE),
                    AddRule(router, RULE_MAIN_FIRST, MAIN_TABLE, suppress_prefixlength=0)]
            ops += [AddRule(router, RULE_EIP, EIP_TABLE, src=IPv4Network(f"{e.private}/32")) for e in ports]
        return ops

    def edge(self, lab: Lab) -> list[Op]:
        return [NftApply(igw.netns, ruleset(lab, igw), purpose=f"EIPs of VPC {igw.vpc}: 1:1 NAT")
                for igw in lab.igws]


def port_eips(lab: Lab, igw: IgwInfo) -> list[EipInfo]:
    """The EIPs bound to ports of the gateway's VPC (not the NAT gateways' own)."""
    return [e for e in lab.eips if e.vpc == igw.vpc and e.private is not None]


def ruleset(lab: Lab, igw: IgwInfo) -> str:
    """The gateway's whole `netlab-eip` table, replacing any previous one in one transaction."""
    ports = port_eips(lab, igw)
    public = [ip for gw in lab.nat_gateways if gw.vpc == igw.vpc for ip in gw.eips]

    def elements(items: list[str]) -> list[str]:
        return [f"\t\telements = {{ {', '.join(items)} }}"] if items else []

    out = [f"# netlab {lab.name}: the internet gateway of VPC {igw.vpc}",
           f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
           "\tmap eip_to_port {", "\t\ttype ipv4_addr : ipv4_addr",
           *elements([f"{e.ip} : {e.private}" for e in ports]), "\t}",
           "\tmap port_to_eip {", "\t\ttype ipv4_addr : ipv4_addr",
           *elements([f"{e.private} : {e.ip}" for e in ports]), "\t}",
           "\tset bound_ports {", "\t\ttype ipv4_addr", *elements([str(e.private) for e in ports]), "\t}",
           "\tset natgw_eips {", "\t\ttype ipv4_addr", *elements([str(ip) for ip in public]), "\t}",
           "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat; policy accept;",
           f'\t\tiifname "{IGW_INET_IF}" dnat to ip daddr map @eip_to_port comment "an EIP to its port"', "\t}",
           "\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat; policy accept;",
           f'\t\toifname "{IGW_INET_IF}" snat to ip saddr map @port_to_eip comment "a port to its EIP"', "\t}",
           "\tchain forward {", "\t\ttype filter hook forward priority filter; policy accept;",
           f'\t\toifname "{IGW_INET_IF}" ip saddr @bound_ports accept',
           f'\t\toifname "{IGW_INET_IF}" ip saddr @natgw_eips accept',
           f'\t\toifname "{IGW_INET_IF}" counter drop comment "no EIP, no SNAT: a private source stays in the VPC"',
           "\t}", "}"]
    return "\n".join(out) + "\n"


def port_of(lab: Lab, ref: str) -> tuple[str, IPv4Address, str]:
    """(kind, private address, VPC) of the port an EIP binds to; EipError if none."""
    if ref.startswith("natgw/"):
        raise EipError("a NAT gateway's EIPs are listed in its own entry (nat_gateways[].eips)")
    if "/" in ref:
        cluster_name, _, name = ref.partition("/")
        cluster = next((c for c in lab.clusters if c.name == cluster_name), None)
        if cluster is None:
            raise EipError(f"unknown cluster '{cluster_name}'; clusters: "
                                  + (", ".join(c.name for c in lab.clusters) or "(none)"))
        node = next((n for n in cluster.nodes if n.name == name), None)
        if node is not None:
            return "node", node.eth0.ip, lab.vpc_of_subnet(node.eth0.subnet).name
        pod = next((p for p in cluster.pods if p.name == name), None)
        if pod is None:
            raise EipError(f"cluster '{cluster_name}' has no node or pod '{name}'")
        if cluster.model != "eni":
            raise EipError(f"an EIP binds to a pod only in the eni model (Cloud Native Network 2.0); "
                                  f"pods of cluster '{cluster_name}' (model {cluster.model}) leave as their "
                                  f"node: bind the EIP to {cluster_name}/{pod.node}")
        node = cluster.node(pod.node)
        return "pod", pod.ip, lab.vpc_of_subnet(node.eth0.subnet).name
    host = next((h for h in lab.hosts if h.name == ref), None)
    if host is None:
        raise EipError(f"unknown object '{ref}'; an EIP binds to a node (CLUSTER/NODE), a VPC host "
                              f"({', '.join(h.name for h in lab.hosts) or 'none'}) or a pod of an eni cluster")
    return "host", host.eth0.ip, lab.vpc_of_subnet(host.eth0.subnet).name


def change(lab: Lab, ip: IPv4Address, bind: str) -> tuple[Lab, EipInfo, list[Op]]:
    """A running lab with EIP `ip` bound to another port (`netlab eip LAB EIP bind OBJECT`,
    as the console's unbind and bind): the lab after the change, the EIP, and the ops —
    the internet's route to it (when it moves to another VPC), each VPC router's policy
    rules for its EIP-bound ports, each affected gateway's 1:1 NAT table re-rendered whole."""
    old = next((e for e in lab.eips if e.ip == ip), None)
    if old is None:
        raise EipError(f"lab {lab.name} has no EIP {ip}; EIPs: "
                       + (", ".join(f"{e.ip} ({e.bind})" for e in lab.eips) or "none"))
    if old.kind in ("natgw", "elb"):
        raise EipError(f"EIP {ip} belongs to {old.bind}; bind another EIP")
    kind, private, vpc = port_of(lab, bind)
    if kind == "elb":
        raise EipError(f"{bind}: bind an ELB's EIP in the scenario (eips[].bind: elb/NAME)")
    holder = next((e for e in lab.eips if e.bind == bind and e.ip != ip), None)
    if holder is not None:
        raise EipError(f"{bind} already has EIP {holder.ip}; a port takes one")
    new = old.model_copy(update={"bind": bind, "kind": kind, "private": private, "vpc": vpc})
    new_lab = lab.model_copy(update={"eips": [new if e.ip == ip else e for e in lab.eips]})
    ops: list[Op] = []
    host = IPv4Network(f"{ip}/32")
    if new.vpc != old.vpc:
        ops += [DelRoute(lab.internet.netns, host),
                AddRoute(lab.internet.netns, host, via=igw_of(lab, new.vpc).internet_link.address.ip)]
    for vpc_name in dict.fromkeys((old.vpc, new.vpc)):
        igw = igw_of(lab, vpc_name)
        before, after = port_eips(lab, igw), port_eips(new_lab, igw)
        router = lab.vpc_named(vpc_name).netns
        if before and not after:
            ops += [DelRule(router, RULE_MAIN_FIRST, MAIN_TABLE, suppress_prefixlength=0),
                    DelRoute(router, DEFAULT, table=EIP_TABLE)]
        if after and not before:
            ops += [AddRoute(router, DEFAULT, via=igw.vpc_link.address.ip, table=EIP_TABLE),
                    AddRule(router, RULE_MAIN_FIRST, MAIN_TABLE, suppress_prefixlength=0)]
        ops += [DelRule(router, RULE_EIP, EIP_TABLE, src=IPv4Network(f"{e.private}/32"))
                for e in before if e.ip == ip]
        ops += [AddRule(router, RULE_EIP, EIP_TABLE, src=IPv4Network(f"{e.private}/32"))
                for e in after if e.ip == ip]
        ops.append(NftApply(igw.netns, ruleset(new_lab, igw), purpose=f"EIPs of VPC {igw.vpc}: 1:1 NAT"))
    return new_lab, new, ops


OBJECT = EipObject()
