"""Bench the eni model against the VPC model on this machine (root).

Time to `up` and `down` a 10-node x 20-pod lab (Python API, resolve and plan included in
`up`), median of `--repeat` runs each, the two labs alternating so that a busy machine
weighs on both alike.

    sudo .venv/bin/python bench/eni.py [--repeat 3] [--nodes 10] [--pods 20] [--sub-eni macvlan]

The ENI lab: pods on macvlan sub-ENIs (mode vepa) of each node's trunk ENI, every pod with
its veth path to the node and its chains in the VPC router's security-group table. The VPC
lab: one routed veth per pod, one VPC route per node.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = str(REPO)  # the lab's agent process imports this tree

from netlab.apply import executor  # noqa: E402
from netlab.lab.resolve import resolve  # noqa: E402
from netlab.plan.planner import build  # noqa: E402
from netlab.scenario import loader  # noqa: E402


def scenario(name: str, model: str, nodes: int, pods: int, sub_eni: str) -> str:
    lines = [f"name: {name}", "vpc:", "  subnets:", "    - {name: nodes, cidr: 192.168.0.0/24}",
             "    - {name: pods, cidr: 192.168.4.0/22}", "hosts:", "  - {name: ecs-1}", "clusters:",
             "  - name: c1", f"    model: {model}"]
    if model == "eni":
        lines += ["    pod_subnet: pods", f"    sub_eni: {sub_eni}"]
    lines.append("    nodes:")
    quota = f", sub_eni_quota: {max(pods, 16)}" if model == "eni" else ""
    lines += [f"      - {{name: node-{n}{quota}}}" for n in range(1, nodes + 1)]
    lines.append("    pods:")
    lines += [f"      - {{name: p{n}-{i}, node: node-{n}, ports: [{{port: 8080}}]}}"
              for n in range(1, nodes + 1) for i in range(1, pods + 1)]
    return "\n".join(lines) + "\n"


def lab_of(text: str):
    from netlab.cli import _features

    s, src = loader.load_text(text, "<bench>")
    return resolve(s, src, _features())


def up_down(text: str) -> tuple[float, float, int]:
    start = time.monotonic()
    lab = lab_of(text)
    plan = build(lab)
    try:
        executor.up(lab, plan)
        up = time.monotonic() - start
    finally:
        start = time.monotonic()
        executor.down(lab.name)
    return up, time.monotonic() - start, len(plan.ops)


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--pods", type=int, default=20, help="pods per node")
    ap.add_argument("--sub-eni", default="macvlan", choices=["macvlan", "ipvlan", "vlan"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/eni.py needs root (network namespaces)", file=sys.stderr)
        return 2
    texts = {"eni": scenario("bench-eni", "eni", args.nodes, args.pods, args.sub_eni),
             "vpc": scenario("bench-eni-vpc", "vpc", args.nodes, args.pods, args.sub_eni)}
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in texts}
    ops = {}
    for _ in range(args.repeat):
        for model, text in texts.items():
            up, down, ops[model] = up_down(text)
            times[model][0].append(up)
            times[model][1].append(down)
    print(f"== {args.nodes} nodes x {args.pods} pods, up (resolve + plan + apply) and down")
    for model, (ups, downs) in times.items():
        label = f"eni ({args.sub_eni})" if model == "eni" else "vpc"
        print(f"{label:16} {ops[model]:5d} ops  up {fmt(ups)}  down {fmt(downs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
