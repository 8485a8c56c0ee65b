"""The faults an exercise injects into its running lab (pure): each kind turns the lab as
`up` built it into the broken lab and the operations that break it, with the same ops and
the same change functions as everything else (`netlab.apply.executor.change` applies them,
records the broken lab in lab.json and re-syncs the pod agent).

Two sorts, as real clusters break:

- what the lab *is* changes (the resolved lab and the datapath that renders it): a VPC
  route table entry removed or added (`vpc_route`), a Kubernetes object patched
  (`patch`: a Service's selector or targetPort, an Ingress path type; kube-proxy and nginx
  re-synced), a NAT gateway's SNAT rule removed (`nat`), an EIP bound to another port
  (`eip`), a security-group rule removed or added (`sg`). The broken lab is what the cloud
  console would show, so `why` explains the failure from it;
- only the kernel changes (the console still shows a healthy lab): a pod's MTU (`mtu`: both
  ends of its veth, as a CNI misconfigured on a node would set them).

A fault's fields are checked against the scenario when the exercise is loaded: a fault that
names no route, object or rule of its lab is an error of the exercise file.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any, Literal

from pydantic import Field, model_validator

from netlab.lab.model import Lab, PodInfo, VpcRoute
from netlab.plan.ops import Op, SetLink
from netlab.scenario.security_groups import Rule
from netlab.scenario.types import Address, Cidr, Name, Strict


class FaultError(ValueError):
    def __init__(self, message: str, field: tuple = ()):
        super().__init__(message)
        self.field = field  # inside the fault's own entry


class RouteEntry(Strict):
    destination: Cidr
    via: str = Field(description="the next hop: a host, CLUSTER/NODE, or an address of the VPC")
    owner: str = Field(default="added by hand", description="what the console says the route is for")


class VpcRouteFault(Strict):
    """Remove a route from a VPC's route table and/or add one (`ip route del/add` on its router)."""

    vpc: Name | None = Field(default=None, description="default: the first VPC")
    remove: Cidr | None = None
    add: RouteEntry | None = None

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.cloud.vpc import RouteError, change_route
        from netlab.lab import refs

        added = None
        if self.add is not None:
            try:
                via = refs.lookup(lab, self.add.via).ip
            except refs.RefError as e:
                raise FaultError(str(e), ("add", "via")) from None
            added = VpcRoute(destination=self.add.destination, nexthop=via, owner=self.add.owner)
        try:
            new, ops = change_route(lab, self.vpc or lab.vpc.name, remove=self.remove, add=added)
        except RouteError as e:
            raise FaultError(str(e), ("remove",) if self.remove and "no route" in str(e) else ()) from None
        return new, [ops]


class MtuFault(Strict):
    """Set the MTU of pods' `eth0` and of the node-side end of their veth."""

    pods: list[str] = Field(min_length=1, description="CLUSTER/POD of each pod")
    mtu: int = Field(ge=576, le=9000)

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.lab import refs

        ops: list[Op] = []
        for i, ref in enumerate(self.pods):
            try:
                target = refs.lookup(lab, ref)
            except refs.RefError as e:
                raise FaultError(str(e), ("pods", i)) from None
            pod = target.obj
            if not isinstance(pod, PodInfo) or pod.hostNetwork:
                raise FaultError(f"{ref} is not a pod with a network of its own", ("pods", i))
            node = lab.cluster(pod.cluster).node(pod.node)
            ops += [SetLink(node.netns, pod.host_ifname, mtu=self.mtu), SetLink(pod.netns, "eth0", mtu=self.mtu)]
        return lab, [ops]


class PatchFault(Strict):
    """Patch a Service or an Ingress as `kubectl patch` would (`netlab.lab.patch`)."""

    object: str = Field(description="CLUSTER/svc/NAME or CLUSTER/ingress/NAME")
    type: Literal["merge", "json"] = "merge"
    patch: Any

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.lab.patch import PatchError, patch

        try:
            done = patch(lab, self.object, self.patch, self.type)
        except PatchError as e:
            raise FaultError(str(e), ("patch",)) from None
        return done.lab, done.steps


class NatFault(Strict):
    """Remove (or add) a NAT gateway's SNAT rule (`netlab nat`)."""

    natgw: Name
    remove: str | None = None
    add: str | None = None

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.cloud.natgw import NatError, change

        try:
            new, _, ops = change(lab, self.natgw, add=self.add, remove=self.remove)
        except NatError as e:
            raise FaultError(str(e), (e.field if e.field == "natgw" else ("remove" if self.remove else "add"),)) from None
        return new, [ops]


class EipFault(Strict):
    """Bind an EIP to another port (`netlab eip`)."""

    ip: Address
    bind: str

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.cloud.eip import EipError, change

        try:
            new, _, ops = change(lab, IPv4Address(self.ip), self.bind)
        except EipError as e:
            raise FaultError(str(e), ("bind",)) from None
        return new, [ops]


class SgFault(Strict):
    """Remove a rule from a security group, or add one (`netlab sg`)."""

    group: str
    direction: Literal["inbound", "outbound"] = "inbound"
    remove: Rule | None = None
    add: Rule | None = None

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        from netlab.cloud.secgroup import change_rule
        from netlab.errors import UserError

        steps: list[list[Op]] = []
        for verb, rule in (("remove", self.remove), ("add", self.add)):
            if rule is None:
                continue
            try:
                lab, ops = change_rule(lab, self.group, self.direction, rule, add=verb == "add")
            except UserError as e:
                raise FaultError(str(e), (verb,)) from None
            steps.append(ops)
        return lab, steps


KINDS = {"vpc_route": VpcRouteFault, "mtu": MtuFault, "patch": PatchFault, "nat": NatFault, "eip": EipFault,
         "sg": SgFault}


class Fault(Strict):
    """One fault: exactly one of its kinds."""

    vpc_route: VpcRouteFault | None = None
    mtu: MtuFault | None = None
    patch: PatchFault | None = None
    nat: NatFault | None = None
    eip: EipFault | None = None
    sg: SgFault | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Fault:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one fault kind ({', '.join(KINDS)}), not "
                             + (", ".join(given) if given else "none"))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    def apply(self, lab: Lab) -> tuple[Lab, list[list[Op]]]:
        return getattr(self, self.kind).apply(lab)


def inject(lab: Lab, faults: list[Fault]) -> tuple[Lab, list[list[Op]]]:
    """Every fault in order, each on the lab the previous one left: the broken lab and the
    steps that break the running one. FaultError carries the fault's index first."""
    steps: list[list[Op]] = []
    for i, fault in enumerate(faults):
        try:
            lab, more = fault.apply(lab)
        except FaultError as e:
            raise FaultError(str(e), (i, fault.kind) + e.field) from None
        steps += [s for s in more if s]
    return lab, steps
