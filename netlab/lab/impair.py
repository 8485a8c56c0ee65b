"""Link impairment (pure): which interface of which namespace gets tc netem, and the
neighbour across that link whose round trip proves the delay.

A link is written `OBJECT:IFNAME`: `ecs-1:eth0`, `c1/node-1:eth0`, `c1/web-1:eth0`, a
pod's node-side veth `c1/node-1:veth-web-1`, or a VPC router port `vpc:v-c1-node-1`.
netem acts on egress, so the delay shows once in each round trip through that interface.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab.lab import refs
from netlab.lab.model import ImpairmentInfo, Lab
from netlab.scenario.types import Impairment


class ImpairError(ValueError):
    pass


def links(lab: Lab) -> dict[str, tuple[str, str, IPv4Address]]:
    """Every impairable link: `OBJECT:IFNAME` → (netns, ifname, peer address)."""
    out: dict[str, tuple[str, str, IPv4Address]] = {}
    for h in lab.hosts:
        out[f"{h.name}:eth0"] = (h.netns, "eth0", h.eth0.gateway)
        out[f"vpc:{h.eth0.port}"] = (lab.vpc.netns, h.eth0.port, h.eth0.ip)
    for c in lab.clusters:
        for n in c.nodes:
            out[f"{c.name}/{n.name}:eth0"] = (n.netns, "eth0", n.eth0.gateway)
            out[f"vpc:{n.eth0.port}"] = (lab.vpc.netns, n.eth0.port, n.eth0.ip)
        for p in c.pods:
            node = c.node(p.node)
            out[f"{c.name}/{p.name}:eth0"] = (p.netns, "eth0", node.pod_gateway or node.eth0.ip)
            out[f"{c.name}/{node.name}:{p.host_ifname}"] = (node.netns, p.host_ifname, p.ip)
    return out


def resolve_one(lab: Lab, spec: Impairment) -> ImpairmentInfo:
    if spec.jitter and not spec.delay:
        raise ImpairError("jitter needs delay")
    if not (spec.delay or spec.loss or spec.rate):
        raise ImpairError("give at least one of delay, loss, rate")
    obj, sep, ifname = spec.link.rpartition(":")
    if not sep or not obj or not ifname:
        raise ImpairError(f"'{spec.link}' is not OBJECT:IFNAME (e.g. c1/node-1:eth0)")
    if obj != "vpc":
        try:
            refs.lookup(lab, obj)
        except refs.RefError as e:
            raise ImpairError(str(e)) from None
    known = links(lab)
    if spec.link not in known:
        same = sorted(k for k in known if k.startswith(obj + ":"))
        raise ImpairError(f"{obj} has no interface '{ifname}'; links of {obj}: {', '.join(same) or 'none'}")
    netns, ifname, peer = known[spec.link]
    return ImpairmentInfo(link=spec.link, netns=netns, ifname=ifname, peer=peer, delay=spec.delay,
                          jitter=spec.jitter, loss=spec.loss, rate=spec.rate)
