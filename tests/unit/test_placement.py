"""A lab split across machines: the placement file and each machine's part of the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.errors import ScenarioError, UserError
from netlab.lab.placement import place
from netlab.lab.resolve import resolve
from netlab.plan.ops import AddFdb, AddMachineVxlan, AddNeigh, AddVeth, SetLink, StartProcess
from netlab.plan.planner import build
from netlab.probe.listeners import listeners
from netlab.scenario import loader

SPLIT = Path(__file__).resolve().parents[2] / "deploy" / "split"


def _lab():
    scenario, source = loader.load(SPLIT / "scenario.yaml")
    return resolve(scenario, source, None)


def _place(tmp_path, text: str, machine: str = "host-a"):
    f = tmp_path / "placement.yaml"
    f.write_text(text)
    return place(_lab(), f, machine)


def test_each_machine_builds_its_part_and_the_router_everywhere():
    whole = _lab()
    a = place(whole, SPLIT / "placement.yaml", "host-a")
    b = place(whole, SPLIT / "placement.yaml", "host-b")
    vpc = whole.vpc.netns
    assert vpc in a.netns_names() and vpc in b.netns_names()
    assert sorted(set(a.netns_names()) | set(b.netns_names())) == sorted(whole.netns_names())
    assert set(a.netns_names()) & set(b.netns_names()) == {vpc}
    node2 = whole.cluster("c1").node("node-2")
    pa = build(a).ops
    assert not [op for op in pa if op.netns == node2.netns]
    assert not [op for op in pa if isinstance(op, AddVeth) and op.peer_netns == node2.netns]
    assert not [op for op in pa if op.netns == vpc and getattr(op, "ifname", None) == node2.eth0.port]
    # The subnet is stretched to the other machine, from this machine's address.
    vx = [op for op in pa if isinstance(op, AddMachineVxlan)]
    assert [(op.netns, str(op.local), op.vni) for op in vx] == [(vpc, "192.0.2.11", 10000)]
    assert [str(op.dst) for op in pa if isinstance(op, AddFdb)] == ["192.0.2.12"]
    # Each machine's gateway has its own MAC, and its machines hold it permanently.
    macs = {m: next(op.address for op in build(lab).ops if isinstance(op, SetLink) and op.address)
            for m, lab in (("a", a), ("b", b))}
    assert macs["a"] != macs["b"]
    neigh = [op for op in pa if isinstance(op, AddNeigh)]
    assert {op.netns for op in neigh} == {whole.hosts[0].netns, whole.cluster("c1").node("node-1").netns}
    assert {op.mac for op in neigh} == {macs["a"]}
    # One agent per machine, serving that machine's pods and hosts only.
    assert len([op for op in pa if isinstance(op, StartProcess) and op.name == "agent"]) == 1
    assert {li.owner for li in listeners(b)} == {"c1/web-1"}


def test_an_unsplit_lab_plans_as_before():
    lab = _lab()
    assert lab.placement is None
    assert not [op for op in build(lab).ops if isinstance(op, (AddMachineVxlan, AddNeigh))]


@pytest.mark.parametrize("text, message", [
    ("machines:\n  - {name: a, address: 192.0.2.1, objects: [ecs-1, c1/node-1, c1/node-2]}\n",
     "at least two machines"),
    ("machines:\n  - {name: a, address: 192.0.2.1, objects: [ecs-1, c1/node-1]}\n"
     "  - {name: b, address: 192.0.2.2, objects: [c1/node-9]}\n", "valid: c1/node-1, c1/node-2, ecs-1"),
    ("machines:\n  - {name: a, address: 192.0.2.1, objects: [ecs-1, c1/node-1]}\n"
     "  - {name: b, address: 192.0.2.2, objects: [c1/node-1]}\n", "already placed on machine 'a'"),
    ("machines:\n  - {name: a, address: 192.0.2.1, objects: [ecs-1]}\n"
     "  - {name: b, address: 192.0.2.2, objects: [c1/node-1]}\n", "not placed on any machine: c1/node-2"),
    ("machines:\n  - {name: a, address: 192.0.2.1, objects: [ecs-1, c1/node-1]}\n"
     "  - {name: b, address: 192.0.2.1, objects: [c1/node-2]}\n", "another machine's address"),
    ("machines:\n  - {name: a, adress: 192.0.2.1, objects: []}\n", "address: Field required"),
])
def test_bad_placements_name_file_line_and_field(tmp_path, text, message):
    with pytest.raises(ScenarioError) as e:
        _place(tmp_path, text)
    assert message in str(e.value)
    assert "placement.yaml" in str(e.value) and ":" in str(e.value)


def test_an_unknown_machine_is_refused(tmp_path):
    with pytest.raises(UserError, match="valid: host-a, host-b"):
        place(_lab(), SPLIT / "placement.yaml", "host-c")
