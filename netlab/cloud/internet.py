"""The internet and the internet gateways: the public side of a lab.

```
 internet/client  internet/server           public hosts: one namespace each, eth0 on br-inet
        \\              /
         internet  (br-inet 203.0.113.1/24; a /32 route per EIP to its VPC's gateway)
          |  inet0 ⇄ igw-<vpc>
      igw/<vpc>     (EIPs: 1:1 NAT, netlab.cloud.eip; NAT-gateway EIPs routed to the gateway)
       |      \\ ngw-<name> ⇄ igw0
       |       natgw/<name>  (SNAT rules, netlab.cloud.natgw)
       |  vpc0 ⇄ igw0      / vpc0 ⇄ ngw-<name>
      VPC router ─────────
```

- `internet` is a router namespace: a bridge (`br-inet`) holds the gateway of the public
  hosts' network (`internet.cidr`, 203.0.113.0/24 by default), and the only other routes
  are one /32 per EIP towards the internet gateway of the EIP's VPC. There is no default
  route: nothing in it routes anywhere but the lab, and a private address (a node IP, a
  pod IP) is unreachable from it, as on the real internet.
- Every VPC gets an internet gateway (`igw/<vpc>`, its own namespace) between its router
  and `internet`, joined by two transit links (`netlab.cloud.links`). It routes the VPC
  CIDR to the router and everything else to `internet`; the EIPs' 1:1 NAT lives in its
  netfilter ruleset (`netlab.cloud.eip`), and its forward filter lets out to the internet
  only what carries a public source: an EIP-bound port's traffic (translated on the way out)
  and the NAT gateways' traffic (already translated).
- Public hosts are served by the pod agent like VPC hosts (`internet/<name>` in checks and
  `netlab exec`), so a public server reports the source address it really saw.

Public addresses come from the documentation ranges only (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24): the EIP pool and the public hosts' network must lie inside them.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

from pydantic import Field

from netlab.cloud import links
from netlab.cloud.base import CloudObject
from netlab.cloud.vpc import DEFAULT, no_icmp_ratelimit
from netlab.lab import ipam, naming
from netlab.lab.model import Attachment, IgwInfo, InternetInfo, Lab, PublicHostInfo
from netlab.plan.ops import AddAddress, AddLink, AddNetns, AddRoute, AddVeth, Op, SetLink, Sysctl
from netlab.scenario.types import Address, Cidr, Name, Port, Strict

DOCUMENTATION_RANGES = (IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))
BRIDGE = "br-inet"
# Interface names inside the internet gateway.
IGW_VPC_IF, IGW_INET_IF = "vpc0", "inet0"
ROUTER_IGW_IF = "igw0"  # the router's end of its link to the gateway


class PublicHost(Strict):
    """A client or server on the internet."""

    name: Name
    ip: Address | None = Field(default=None, description="default: next free address of internet.cidr")
    ports: list[Port] = Field(default_factory=lambda: [Port(port=80)])


class Internet(Strict):
    """The public side: public hosts, and the pool EIPs are taken from."""

    cidr: Cidr = Field(default=IPv4Network("203.0.113.0/24"), description="the public hosts' network")
    eip_pool: Cidr = Field(default=IPv4Network("198.51.100.0/24"), description="where EIPs come from")
    hosts: list[PublicHost] = Field(default_factory=list)


def public_range(cidr: IPv4Network) -> bool:
    return any(cidr.subnet_of(r) for r in DOCUMENTATION_RANGES)


def netns_names(lab_name: str, spec: Internet, vpcs: list[str]) -> list[tuple[str, str, tuple]]:
    """(netns, what, scenario path) of every namespace this section asks for (name checks)."""
    out = [(naming.netns(lab_name, "internet"), "the internet", ("internet",))]
    out += [(naming.netns(lab_name, "internet", h.name), f"public host 'internet/{h.name}'",
             ("internet", "hosts", i, "name")) for i, h in enumerate(spec.hosts)]
    out += [(igw_netns(lab_name, v), f"the internet gateway of VPC '{v}'", ("internet",)) for v in vpcs]
    return out


def igw_netns(lab_name: str, vpc: str) -> str:
    return naming.netns(lab_name, vpc, "igw")


class InternetObject(CloudObject):
    name = "internet"

    # -- resolve --------------------------------------------------------------------------
    def resolve(self, scenario, lab: Lab, ctx) -> None:
        spec: Internet | None = scenario.internet
        if spec is None:
            return
        for field, cidr in (("cidr", spec.cidr), ("eip_pool", spec.eip_pool)):
            if not public_range(cidr):
                raise ctx.error(("internet", field), f"{cidr} is not inside a documentation range "
                                                     "(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24); "
                                                     "a lab's public addresses must stay there")
        if spec.cidr.overlaps(spec.eip_pool):
            raise ctx.error(("internet", "eip_pool"),
                            f"the EIP pool {spec.eip_pool} overlaps internet.cidr {spec.cidr}")
        if spec.cidr.prefixlen > 29:
            raise ctx.error(("internet", "cidr"), f"{spec.cidr} is too small; use /29 or larger")
        taken = [(v.cidr, f"VPC '{v.name}'") for v in lab.vpcs]
        taken += [(net, f"a CIDR of cluster '{c.name}'") for c in lab.clusters
                  for net in (c.container_cidr, c.service_cidr)]
        for field, cidr in (("cidr", spec.cidr), ("eip_pool", spec.eip_pool)):
            for net, what in taken:
                if cidr.overlaps(net):
                    raise ctx.error(("internet", field), f"{cidr} overlaps {what} ({net})")

        pool = ipam.Pool(spec.cidr)
        for i, h in enumerate(spec.hosts):
            if h.ip is not None:
                if not pool.usable(h.ip) or h.ip in pool.taken:
                    raise ctx.error(("internet", "hosts", i, "ip"),
                                    f"{h.ip} is not a free address of internet.cidr {spec.cidr} "
                                    f"({ipam.gateway(spec.cidr)} is the gateway)")
                pool.claim(h.ip)
        gateway = ipam.gateway(spec.cidr)
        netns = naming.netns(lab.name, "internet")
        hosts = []
        for i, h in enumerate(spec.hosts):
            ip = h.ip or pool.next()
            if ip is None:
                raise ctx.error(("internet", "hosts", i), f"internet.cidr {spec.cidr} has no free address left")
            hosts.append(PublicHostInfo(
                name=h.name, netns=naming.netns(lab.name, "internet", h.name), ports=h.ports,
                eth0=Attachment(subnet="internet", address=IPv4Interface(f"{ip}/{spec.cidr.prefixlen}"),
                                gateway=gateway, port=naming.ifname("i-", h.name, unique_by=f"internet/{h.name}"))))
        lab.internet = InternetInfo(netns=netns, cidr=spec.cidr, bridge=BRIDGE, eip_pool=spec.eip_pool, hosts=hosts,
                                    gateway=IPv4Interface(f"{gateway}/{spec.cidr.prefixlen}"))
        for vpc in lab.vpcs:
            ns = igw_netns(lab.name, vpc.name)
            lab.igws.append(IgwInfo(
                vpc=vpc.name, netns=ns, vpc_link=links.new_link(lab, ns, IGW_VPC_IF, vpc.netns, ROUTER_IGW_IF),
                internet_link=links.new_link(lab, ns, IGW_INET_IF, netns,
                                             naming.ifname("igw-", vpc.name, unique_by=vpc.name), offset=1)))

    # -- plan -----------------------------------------------------------------------------
    def fabric(self, lab: Lab) -> list[Op]:
        """The internet's router and bridge; each VPC's gateway, linked to both sides."""
        inet = lab.internet
        if inet is None:
            return []
        ops: list[Op] = _router(inet.netns) + [
            AddLink(inet.netns, inet.bridge, "bridge", mtu=lab.underlay_mtu),
            AddAddress(inet.netns, inet.bridge, inet.gateway),
            SetLink(inet.netns, inet.bridge)]
        for g in lab.igws:
            ops += _router(g.netns) + links.link_ops(g.vpc_link, lab.underlay_mtu) \
                + links.link_ops(g.internet_link, lab.underlay_mtu)
        return ops

    def machines(self, lab: Lab) -> list[Op]:
        """Public hosts on the internet's bridge."""
        ops: list[Op] = []
        for h in lab.public_hosts():
            ops += [AddNetns(h.netns),
                    AddVeth(h.netns, "eth0", lab.internet.netns, h.eth0.port, lab.underlay_mtu),
                    SetLink(lab.internet.netns, h.eth0.port, master=lab.internet.bridge),
                    SetLink(h.netns, "lo"), SetLink(h.netns, "eth0"),
                    AddAddress(h.netns, "eth0", h.eth0.address),
                    AddRoute(h.netns, DEFAULT, via=h.eth0.gateway, dev="eth0")]
        return ops

    def routes(self, lab: Lab) -> list[Op]:
        """Each gateway: its VPC's CIDR to the router, everything else to the internet."""
        ops: list[Op] = []
        for g in lab.igws:
            vpc = lab.vpc_named(g.vpc)
            ops += [AddRoute(g.netns, vpc.cidr, via=g.vpc_link.peer_address.ip),
                    AddRoute(g.netns, DEFAULT, via=g.internet_link.peer_address.ip)]
        return ops


def _router(netns: str) -> list[Op]:
    return [AddNetns(netns), Sysctl(netns, "net.ipv4.ip_forward", "1"), no_icmp_ratelimit(netns), SetLink(netns, "lo")]


def igw_of(lab: Lab, vpc: str) -> IgwInfo:
    return next(g for g in lab.igws if g.vpc == vpc)


OBJECT = InternetObject()
