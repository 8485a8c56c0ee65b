"""Bench the tunnel model on this machine (root).

1. Time to `up` and `down` a 10-node x 10-pod tunnel lab (Open vSwitch per node), the same
   with `switch: linux-bridge`, and the VPC model for reference.
2. Pod-to-pod TCP throughput across nodes: VPC model (routed veth, no encapsulation), tunnel
   model with Open vSwitch (here: the userspace datapath) and with kernel VXLAN
   (linux-bridge). iperf3 runs inside the pod namespaces; the three labs are up at the same
   time and each round measures all of them back to back in a shuffled order (paired runs),
   because single runs are too noisy to show a 5-15 % difference.

    sudo PYTHONPATH=. python bench/tunnel.py [--rounds 5] [--seconds 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = str(REPO)  # the lab's agent process imports this tree

from netlab import plan as plan_mod  # noqa: E402
from netlab.apply import executor  # noqa: E402
from netlab.lab.resolve import resolve  # noqa: E402
from netlab.scenario import loader  # noqa: E402


def scenario(name: str, model: str, nodes: int, pods_per_node: int, extra: str = "") -> str:
    lines = [f"name: {name}", "hosts:", "  - {name: ecs-1}", "clusters:", "  - name: c1", f"    model: {model}"]
    lines += [f"    {line}" for line in extra.splitlines()]
    lines.append("    nodes:")
    lines += [f"      - {{name: node-{n}}}" for n in range(1, nodes + 1)]
    lines.append("    pods:")
    lines += [f"      - {{name: p{n}-{i}, node: node-{n}, ports: [{{port: 8080}}]}}"
              for n in range(1, nodes + 1) for i in range(1, pods_per_node + 1)]
    return "\n".join(lines) + "\n"


def build(text: str):
    s, src = loader.load_text(text, "<bench>")
    return resolve(s, src)


def time_up_down(text: str, repeat: int) -> tuple[list[float], list[float], int]:
    ups, downs = [], []
    ops = 0
    for _ in range(repeat):
        start = time.monotonic()
        lab = build(text)
        plan = plan_mod.build(lab)
        ops = len(plan.ops)
        try:
            executor.up(lab, plan)
            ups.append(time.monotonic() - start)
        finally:
            start = time.monotonic()
            executor.down(lab.name)
            downs.append(time.monotonic() - start)
    return ups, downs, ops


def iperf(server_ns: str, server_ip: str, client_ns: str, seconds: float) -> float:
    """One iperf3 TCP run from client_ns to server_ns; Gbit/s received."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):  # wait for the listener
            r = subprocess.run(["ip", "netns", "exec", server_ns, "ss", "-Htln", "sport = :5201"],
                               capture_output=True, text=True)
            if r.stdout.strip():
                break
            time.sleep(0.02)
        r = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-t", str(seconds), "-J"],
                           capture_output=True, text=True, timeout=seconds + 30)
        data = json.loads(r.stdout)
        if "error" in data:
            raise RuntimeError(data["error"])
        return data["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def fmt(xs: list[float], unit: str = "s") -> str:
    return (f"median {statistics.median(xs):.2f} {unit} (min {min(xs):.2f}, max {max(xs):.2f}, "
            f"n={len(xs)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="up/down repetitions per lab")
    ap.add_argument("--rounds", type=int, default=5, help="paired throughput rounds")
    ap.add_argument("--seconds", type=float, default=3, help="iperf3 duration per run")
    ap.add_argument("--skip-updown", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/tunnel.py needs root (network namespaces)", file=sys.stderr)
        return 2

    if not args.skip_updown:
        print(f"== up/down of a 10-node x 10-pod lab ({os.cpu_count()} CPUs), {args.repeat} runs each")
        for label, name, model, extra in (("tunnel, Open vSwitch", "bench-up-ovs", "tunnel", "switch: ovs"),
                                          ("tunnel, linux-bridge", "bench-up-lb", "tunnel", "switch: linux-bridge"),
                                          ("vpc (reference)", "bench-up-vpc", "vpc", "")):
            ups, downs, ops = time_up_down(scenario(name, model, 10, 10, extra), args.repeat)
            print(f"{label:22} {ops:5d} ops  up {fmt(ups)}  down {fmt(downs)}")

    if not args.skip_throughput:
        labs = {"vpc (routed veth)": ("bench-tp-vpc", "vpc", ""),
                "tunnel, OVS": ("bench-tp-ovs", "tunnel", "switch: ovs"),
                "tunnel, kernel VXLAN": ("bench-tp-lb", "tunnel", "switch: linux-bridge")}
        built = {}
        try:
            for label, (name, model, extra) in labs.items():
                lab = build(scenario(name, model, 2, 1, extra))
                executor.up(lab, plan_mod.build(lab))
                built[label] = lab
            for label, lab in built.items():
                c = lab.cluster("c1")
                if label == "tunnel, OVS":
                    print(f"(OVS datapath: {c.network.datapath})")
            results: dict[str, list[float]] = {label: [] for label in built}
            print(f"== pod-to-pod TCP across nodes, iperf3 {args.seconds:g} s, {args.rounds} paired rounds")
            rng = random.Random(7)
            for _ in range(args.rounds):
                order = list(built)
                rng.shuffle(order)
                for label in order:
                    c = built[label].cluster("c1")
                    client, server = c.pods
                    results[label].append(iperf(server.netns, str(server.ip), client.netns, args.seconds))
            for label, xs in results.items():
                print(f"{label:22} {fmt(xs, 'Gbit/s')}")
            base = results["vpc (routed veth)"]
            for label in ("tunnel, kernel VXLAN", "tunnel, OVS"):
                ratios = [t / b for t, b in zip(results[label], base)]
                print(f"{label} / vpc, per round: median {statistics.median(ratios):.3f} "
                      f"(min {min(ratios):.3f}, max {max(ratios):.3f}) -> cost "
                      f"{(1 - statistics.median(ratios)) * 100:.1f} %")
        finally:
            for lab in built.values():
                executor.down(lab.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
