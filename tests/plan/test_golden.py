"""Scenario → plan, compared with reviewed golden files.

A change to what `up` would do shows up here as a readable diff of commands. To accept an
intended change: NETLAB_UPDATE_GOLDEN=1 pytest tests/plan, then review the diff of golden/.
"""

import os
from pathlib import Path

import pytest

from netlab import plan
from netlab.plan.planner import build
from netlab.lab.resolve import resolve
from netlab.scenario import loader

GOLDEN = Path(__file__).parent / "golden"
CASES = ["vpc-basic", "default", "tunnel-basic", "tunnel-linux-bridge", "access", "ingress"]
# The development machines: br_netfilter (built in) and macvlan, so the node security groups are enforced.
HOST = frozenset({"br_netfilter", "macvlan"})
# Scenarios that need kernel features (macvlan, br_netfilter): planned as `netlab validate`
# judges them, as if the kernel had every feature.
ANY_KERNEL = ["eni-basic"]


@pytest.mark.parametrize("name", CASES + ANY_KERNEL)
def test_plan_matches_golden(name):
    scenario, source = loader.load(loader.builtin_path(name))
    text = build(resolve(scenario, source, None if name in ANY_KERNEL else HOST)).render(bodies=True) + "\n"
    golden = GOLDEN / f"{name}.plan"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file; run NETLAB_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text()


def test_plan_orders_namespaces_before_their_use():
    scenario, source = loader.load(loader.builtin_path("vpc-basic"))
    ops = build(resolve(scenario, source)).ops
    created: set[str] = set()
    for op in ops:
        if isinstance(op, plan.AddNetns):
            created.add(op.netns)
            continue
        assert op.netns in created, f"{op} before its namespace"
        if isinstance(op, plan.AddVeth):
            assert op.peer_netns in created, f"{op} before the peer namespace"
    assert isinstance(ops[-1], plan.StartProcess)
