"""Render (and, as root, apply) time of kube-proxy's rules: N Services x M endpoints on one node.

    PYTHONPATH=. python bench/kubeproxy_render.py [--services 1000] [--endpoints 10] [--repeat 3] [--apply]

With --apply (root), each mode's output is also loaded into a throwaway namespace
`nl-bench-kp` the way the lab loads it (iptables-restore --noflush; nft -f), and that
load is timed; the namespace is removed afterwards. IPVS virtual servers need the kernel
tier, so ipvs is rendered only.

Services are ClusterIP with one TCP port; every tenth is a NodePort and every
twentieth a LoadBalancer with ClientIP affinity, so all chain kinds appear. Endpoints
are spread over ten nodes, this node being one of them. Prints, per mode, the best and
median wall time of a full render (model -> text) and the size of what it produced.
With more than 1,000 endpoints in total, iptables mode is in kube-proxy's large-cluster
mode (no per-endpoint comments), as kube-proxy would be.
"""

from __future__ import annotations

import argparse
import statistics
import time

from netlab.kubeproxy import (
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, LoadBalancerIngress,
    LocalDetector, NodeEnv, Service, ServicePort, render_iptables, render_ipvs,
    render_nftables,
)

NODE = "node-0"


def make_inputs(n_services: int, n_endpoints: int):
    services, slices = [], []
    for i in range(n_services):
        name = f"svc-{i}"
        kind = "LoadBalancer" if i % 20 == 0 else "NodePort" if i % 10 == 0 else "ClusterIP"
        node_port = 30000 + i % 2700 if kind != "ClusterIP" else 0
        services.append(Service(
            namespace="bench", name=name, type=kind,
            cluster_ip=f"172.30.{i // 250}.{i % 250 + 1}",
            ports=(ServicePort("http", "TCP", 80, 8080, node_port),),
            external_traffic_policy="Cluster" if kind != "ClusterIP" else "",
            load_balancer_ingress=((LoadBalancerIngress(ip=f"203.0.{i // 250}.{i % 250 + 1}"),)
                                   if kind == "LoadBalancer" else ()),
            session_affinity="ClientIP" if kind == "LoadBalancer" else "None",
        ))
        endpoints = tuple(
            Endpoint(addresses=(f"10.{(i * n_endpoints + j) // 65025 % 250 + 1}."
                                f"{(i * n_endpoints + j) // 255 % 255}.{(i * n_endpoints + j) % 255 + 1}",),
                     conditions=EndpointConditions(ready=True),
                     node_name=f"node-{j % 10}")
            for j in range(n_endpoints))
        slices.append(EndpointSlice(namespace="bench", name=f"{name}-x", service_name=name,
                                    endpoints=endpoints,
                                    ports=(EndpointPort("http", 8080, "TCP"),)))
    return services, slices


def node_env(mode: str) -> NodeEnv:
    return NodeEnv(hostname=NODE, node_ips=("192.168.0.2",),
                   local_detector=LocalDetector("ClusterCIDR", "10.0.0.0/8"),
                   service_cidrs=("172.30.0.0/16",), nfacct=(mode == "iptables"))


def output_of(mode: str, rs) -> str:
    if mode == "iptables":
        return rs.restore_input()
    if mode == "nftables":
        return rs.transaction()
    return rs.ipset_restore_input() + rs.iptables_restore_input() + rs.ipvsadm_restore_input()


RENDERERS = {"iptables": render_iptables, "nftables": render_nftables, "ipvs": render_ipvs}


def bench(mode: str, services, slices, repeat: int) -> tuple[list[float], str]:
    env = node_env(mode)
    times, text = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        text = output_of(mode, RENDERERS[mode](services, slices, env))
        times.append(time.perf_counter() - start)
    return times, text


def apply_times(mode: str, services, slices, repeat: int) -> list[float]:
    """Load the rendered rules into a fresh namespace, as the lab does; seconds per load."""
    from netlab import linux
    from netlab.apply.netfilter import run

    rs = RENDERERS[mode](services, slices, node_env(mode))
    times = []
    for _ in range(repeat):
        linux.create_netns("nl-bench-kp")
        try:
            if mode == "iptables":
                for name in rs.nfacct_counters:
                    run("nl-bench-kp", ["nfacct", "add", name])
                run("nl-bench-kp", ["iptables-restore", "-w", "--noflush"], rs.jump_rules_restore_input())
                start = time.perf_counter()
                run("nl-bench-kp", ["iptables-restore", "-w", "--noflush"], rs.restore_input())
            else:
                start = time.perf_counter()
                run("nl-bench-kp", ["nft", "-f", "-"], rs.transaction())
            times.append(time.perf_counter() - start)
        finally:
            linux.remove_netns("nl-bench-kp")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--apply", action="store_true", help="also time loading the rules (root)")
    args = parser.parse_args()
    services, slices = make_inputs(args.services, args.endpoints)
    print(f"{args.services} Services x {args.endpoints} endpoints, one node, "
          f"best/median of {args.repeat} runs")
    print(f"{'mode':<10}{'render best':>12}{'median':>8}{'apply best':>12}{'median':>8}{'lines':>9}{'MiB':>6}")
    for mode in RENDERERS:
        times, text = bench(mode, services, slices, args.repeat)
        applied = apply_times(mode, services, slices, args.repeat) if args.apply and mode != "ipvs" else []
        apply_cols = (f"{min(applied):>12.3f}{statistics.median(applied):>8.3f}" if applied
                      else f"{'-':>12}{'-':>8}")
        print(f"{mode:<10}{min(times):>12.3f}{statistics.median(times):>8.3f}{apply_cols}"
              f"{text.count(chr(10)):>9}{len(text.encode()) / 2**20:>6.1f}")


if __name__ == "__main__":
    main()
