"""VPC peering: a connection between two VPC routers.

As in the service, a peering connection carries nothing by itself: each side's route table
needs entries whose next hop is the peering (`routes: [{destination: …, nexthop:
peering/<name>}]` under the VPC), and the scenario writes them. So a vpc-model cluster's
pods are reachable from the peer only when the peer routes the container CIDR over the
peering; tunnel-model pods never are (their VPC has no route to the container CIDR); eni
pods are whenever the peer routes their subnet. Two VPCs whose CIDRs overlap cannot be
peered (a lab refuses overlapping VPCs altogether), and two VPCs take one peering.

Realisation: one veth between the two router namespaces (`pr-<name>` on both sides),
addressed from the transit range; a route entry's next hop is the far side's address.
"""

from __future__ import annotations

from pydantic import Field

from netlab.cloud import links
from netlab.cloud.base import CloudObject
from netlab.lab import naming
from netlab.lab.model import Lab, PeeringInfo
from netlab.plan.ops import Op
from netlab.scenario.types import Name, Strict


class Peering(Strict):
    name: Name
    vpcs: list[Name] = Field(min_length=2, max_length=2, description="the two VPCs it connects")


class PeeringObject(CloudObject):
    name = "peering"

    def resolve(self, scenario, lab: Lab, ctx) -> None:
        for i, spec in enumerate(scenario.peerings):
            path = ("peerings", i)
            if any(p.name == spec.name for p in lab.peerings):
                raise ctx.error(path + ("name",), f"duplicate peering name '{spec.name}'")
            for k, name in enumerate(spec.vpcs):
                if not any(v.name == name for v in lab.vpcs):
                    raise ctx.error(path + ("vpcs", k), f"unknown VPC '{name}'; VPCs: "
                                                        + ", ".join(v.name for v in lab.vpcs))
            a, b = spec.vpcs
            if a == b:
                raise ctx.error(path + ("vpcs",), "a peering connects two different VPCs")
            same = next((p for p in lab.peerings if set(p.vpcs) == {a, b}), None)
            if same is not None:
                raise ctx.error(path + ("vpcs",), f"VPCs '{a}' and '{b}' are already peered by '{same.name}'; "
                                                  "two VPCs take one peering connection")
            ifname = naming.ifname("pr-", spec.name)
            lab.peerings.append(PeeringInfo(name=spec.name, vpcs=[a, b], link=links.new_link(
                lab, lab.vpc_named(a).netns, ifname, lab.vpc_named(b).netns, ifname)))

    def fabric(self, lab: Lab) -> list[Op]:
        return [op for p in lab.peerings for op in links.link_ops(p.link, lab.underlay_mtu)]


OBJECT = PeeringObject()
