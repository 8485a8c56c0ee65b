"""A placement: which machine holds which objects of a lab split across machines.

A simulation of one lab on several machines (docs/scale-out.md): every machine runs
`netlab up SCENARIO --placement FILE --machine NAME`, resolving the whole scenario (so
every machine agrees on every name and address) and building its own part. A placement
file names the machines, each with its address on the network that joins them and the
VPC hosts and cluster nodes it holds::

    machines:
      - {name: host-a, address: 192.0.2.11, objects: [ecs-1, c1/node-1]}
      - {name: host-b, address: 192.0.2.12, objects: [c1/node-2]}

Pods live with their node. Every VPC router is built on every machine (a distributed
router, as a cloud's virtual routers run on every hypervisor); `netlab.plan.placement`
joins the copies of each subnet with VXLAN between the machines. Every host and node is
placed on exactly one machine. Pure: this module reads a file and decides, nothing else.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from netlab.errors import ScenarioError, UserError
from netlab.inputfile import SCENARIO_LIMIT, read_text
from netlab.lab.model import Lab, MachineInfo, PlacementInfo
from netlab.scenario import loader
from netlab.scenario.types import Name


class _Machine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    address: IPv4Address
    objects: list[str]


class _Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    machines: list[_Machine]


def machine_objects(lab: Lab) -> dict[str, list[str]]:
    """What a placement may name (`ecs-1`, `c1/node-1`) → the namespaces that go with it."""
    out = {h.name: [h.netns] for h in lab.hosts}
    for c in lab.clusters:
        for n in c.nodes:
            out[f"{c.name}/{n.name}"] = [n.netns] + [p.netns for p in c.pods_on(n.name)]
    return out


def place(lab: Lab, file: str | Path, machine: str) -> Lab:
    """The lab as the part that `machine` builds, per the placement in `file`."""
    text = read_text(file, limit=SCENARIO_LIMIT, error=ScenarioError, what="placement")
    data, source = loader.parse_yaml(text, str(file))
    try:
        spec = _Placement.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise source.error(tuple(err["loc"]), err["msg"]) from None
    placeable = machine_objects(lab)
    seen: dict[str, str] = {}
    machines: list[MachineInfo] = []
    for i, m in enumerate(spec.machines):
        if any(o.name == m.name for o in machines):
            raise source.error(("machines", i, "name"), f"machine '{m.name}' is listed twice")
        if any(o.address == m.address for o in machines):
            raise source.error(("machines", i, "address"), f"{m.address} is another machine's address")
        netns: list[str] = []
        for j, obj in enumerate(m.objects):
            where = ("machines", i, "objects", j)
            if obj not in placeable:
                raise source.error(where, f"'{obj}' is no VPC host or cluster node of lab {lab.name}; "
                                          f"valid: {', '.join(sorted(placeable))}")
            if obj in seen:
                raise source.error(where, f"'{obj}' is already placed on machine '{seen[obj]}'")
            seen[obj] = m.name
            netns += placeable[obj]
        machines.append(MachineInfo(name=m.name, address=m.address, objects=list(m.objects), netns=netns))
    missing = sorted(set(placeable) - set(seen))
    if missing:
        raise source.error(("machines",), f"not placed on any machine: {', '.join(missing)}")
    if len(machines) < 2:
        raise source.error(("machines",), "a split lab needs at least two machines")
    if machine not in seen.values() and all(m.name != machine for m in machines):
        raise UserError(f"--machine: '{machine}' is not a machine of {file}; "
                        f"valid: {', '.join(m.name for m in machines)}")
    return lab.model_copy(update={"placement": PlacementInfo(machine=machine, machines=machines)})
