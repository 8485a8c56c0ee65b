"""The cloud-object interface: what a cloud object (VPC, internet gateway, EIP, NAT gateway,
ELB, peering, security groups) contributes to a lab, stage by stage.

The planner builds a lab in stages, in an order the kernel accepts: first every object's
`fabric` (namespaces, bridges: what others plug into), then the clusters (each network
model's nodes and pods, and kube-proxy on every node), then `machines` (VPC hosts and other
namespaces that plug into the fabric), `routes` (route tables, which need their next hops
to exist), `edge` (NAT, filtering and load balancing rules at the edges, once every address
exists) and `processes` (daemons that serve the lab). An object overrides the stages it
takes part in; every stage defaults to nothing.

Before planning, `resolve` turns the object's section of the scenario into its part of the
resolved lab (addresses, links, rules), refusing what the service refuses with the file,
line and field (`ctx.error`); objects resolve in registry order, after the VPCs, hosts and
clusters exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from netlab.lab.model import Lab
    from netlab.plan.ops import Op
    from netlab.scenario.schema import Scenario

STAGES = ("fabric", "machines", "routes", "edge", "processes")


class CloudObject:
    name: ClassVar[str]

    def resolve(self, scenario: Scenario, lab: Lab, ctx) -> None:
        """Fill `lab` with this object's resolved data (a pure step of `netlab.lab.resolve`)."""

    def fabric(self, lab: Lab) -> list[Op]:
        return []

    def machines(self, lab: Lab) -> list[Op]:
        return []

    def routes(self, lab: Lab) -> list[Op]:
        return []

    def edge(self, lab: Lab) -> list[Op]:
        return []

    def processes(self, lab: Lab) -> list[Op]:
        return []
