"""`netlab kube-proxy render` end to end: N Services x M endpoints as kubectl prints them.

    python bench/kubeproxy_manifests.py [--services 10000] [--endpoints 10] [--repeat 3]
                                        [--modes iptables,nftables,ipvs] [--form docs|list]
                                        [--style kubectl|lean] [--compare DIR]

Writes the manifests to a temporary file the way `kubectl get svc,endpointslices -A -o
yaml` prints them (`--form list`: one `kind: List`; `--form docs`: one document per
object, separated by `---`), with the metadata, status and targetRef noise a real cluster
adds (`--style kubectl`, ~3.5 KiB per Service and slice of 10) or only the fields kube-proxy
reads (`--style lean`, ~1.1 KiB), then times the CLI command (interpreter start, YAML in, rules out to /dev/null) and
reports its peak RSS. CPU seconds are the command's and its forked child's (a large file is
read in two processes). `--compare DIR` runs another checkout of netlab (e.g. `git worktree
add DIR main`) interleaved with this one, run by run, so both see the same machine load. The Service mix is bench/kubeproxy_render.py's: ClusterIP with one
TCP port; every tenth a NodePort, every twentieth a LoadBalancer with ClientIP affinity;
endpoints spread over ten nodes, this node being one of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

NODE = "node-0"
ARGS = ["--node-ip", "192.168.0.2", "--hostname", NODE, "--cluster-cidr", "10.0.0.0/8",
        "--service-cidr", "172.16.0.0/12"]
# ClusterIPs count up from 172.16.0.1 (room for a million), LoadBalancer IPs from
# 198.18.0.1 (the benchmarking range).
SERVICE_BASE = int(IPv4Address("172.16.0.1"))
LB_BASE = int(IPv4Address("198.18.0.1"))


def _nth(base: int, i: int) -> str:
    return str(IPv4Address(base + i))


def _service(i: int, noise: bool) -> str:
    kind = "LoadBalancer" if i % 20 == 0 else "NodePort" if i % 10 == 0 else "ClusterIP"
    ip = _nth(SERVICE_BASE, i)
    node_port = f"\n    nodePort: {30000 + i % 2700}" if kind != "ClusterIP" else ""
    etp = "\n  externalTrafficPolicy: Cluster" if kind != "ClusterIP" else ""
    affinity = ("ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 10800"
                if kind == "LoadBalancer" else "None")
    lb = (f"\n    ingress:\n    - ip: {_nth(LB_BASE, i // 20)}\n      ipMode: VIP"
          if kind == "LoadBalancer" else " {}")
    meta = (f'''\
  creationTimestamp: "2026-11-02T10:00:00Z"
  labels:
    app: svc-{i}
  name: svc-{i}
  namespace: bench
  resourceVersion: "{100000 + i}"
  uid: 6b1f0c5e-0000-4000-8000-{i:012d}''' if noise else f"  name: svc-{i}\n  namespace: bench")
    spec_noise = ("\n  internalTrafficPolicy: Cluster\n  ipFamilies:\n  - IPv4\n"
                  "  ipFamilyPolicy: SingleStack") if noise else ""
    cluster_ips = f"\n  clusterIPs:\n  - {ip}" if noise else ""
    return f"""\
apiVersion: v1
kind: Service
metadata:
{meta}
spec:
  clusterIP: {ip}{cluster_ips}{etp}{spec_noise}
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080{node_port}
  selector:
    app: svc-{i}
  sessionAffinity: {affinity}
  type: {kind}
status:
  loadBalancer:{lb}
"""


def _slice(i: int, n_endpoints: int, noise: bool) -> str:
    out = ["addressType: IPv4\napiVersion: discovery.k8s.io/v1\nendpoints:\n"]
    for j in range(n_endpoints):
        k = i * n_endpoints + j
        out.append(f"- addresses:\n  - 10.{k // 65025 % 250 + 1}.{k // 255 % 255}.{k % 255 + 1}\n"
                   "  conditions:\n    ready: true\n")
        if noise:
            out.append("    serving: true\n    terminating: false\n")
        out.append(f"  nodeName: node-{j % 10}\n")
        if noise:
            out.append(f"  targetRef:\n    kind: Pod\n    name: svc-{i}-{j}\n    namespace: bench\n"
                       f"    uid: 0c2d6e1a-0000-4000-8000-{k:012d}\n")
    out.append("kind: EndpointSlice\nmetadata:\n")
    if noise:
        out.append(f'''\
  creationTimestamp: "2026-11-02T10:00:00Z"
  generateName: svc-{i}-
  generation: 1
  labels:
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    kubernetes.io/service-name: svc-{i}
  name: svc-{i}-x
  namespace: bench
  ownerReferences:
  - apiVersion: v1
    blockOwnerDeletion: true
    controller: true
    kind: Service
    name: svc-{i}
    uid: 6b1f0c5e-0000-4000-8000-{i:012d}
  resourceVersion: "{200000 + i}"
  uid: 9a7e3b2c-0000-4000-8000-{i:012d}
''')
    else:
        out.append(f"  labels:\n    kubernetes.io/service-name: svc-{i}\n  name: svc-{i}-x\n"
                   "  namespace: bench\n")
    out.append("ports:\n- name: http\n  port: 8080\n  protocol: TCP\n")
    return "".join(out)


def write_manifests(path: Path, n_services: int, n_endpoints: int, form: str,
                    noise: bool = True) -> None:
    with path.open("w") as out:
        if form == "list":
            out.write("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n")
        for i in range(n_services):
            for doc in (_service(i, noise), _slice(i, n_endpoints, noise)):
                if form == "list":
                    lines = doc.splitlines()
                    out.write("- " + lines[0] + "\n" + "".join(f"  {line}\n" for line in lines[1:]))
                else:
                    out.write("---\n" + doc)


def run_once(argv: list[str], tree: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one CLI run (output to /dev/null),
    with netlab imported from `tree` when given."""
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
    start = time.perf_counter()
    with open(os.devnull, "w") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE, env=env,
                                cwd=tree or None)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed ({os.waitstatus_to_exitcode(status)}): {' '.join(argv)}\n{err}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="iptables,nftables,ipvs")
    parser.add_argument("--form", choices=("docs", "list"), default="docs")
    parser.add_argument("--style", choices=("kubectl", "lean"), default="kubectl",
                        help="kubectl: with the metadata, targetRef and status kubectl prints; "
                             "lean: only the fields kube-proxy reads")
    parser.add_argument("--compare", type=Path,
                        help="another netlab checkout to measure interleaved with this one")
    args = parser.parse_args()
    trees = [None] + ([args.compare.resolve()] if args.compare else [])
    with tempfile.TemporaryDirectory(prefix="netlab-bench-") as tmp:
        path = Path(tmp) / "manifests.yaml"
        write_manifests(path, args.services, args.endpoints, args.form, args.style == "kubectl")
        size = path.stat().st_size
        print(f"{args.services} Services x {args.endpoints} endpoints ({args.style}, {args.form}, "
              f"{size / 2**20:.1f} MiB, {sum(1 for _ in path.open()):,} lines), "
              f"`netlab kube-proxy render` wall clock, best/median of {args.repeat}")
        print(f"{'mode':<10}{'version':<10}{'best s':>8}{'median':>8}{'CPU s':>8}"
              f"{'peak RSS MiB':>14}")
        for mode in args.modes.split(","):
            argv = [sys.executable, "-m", "netlab", "kube-proxy", "render", "--mode", mode,
                    *ARGS, str(path)]
            runs: dict = {tree: [] for tree in trees}
            for _ in range(args.repeat):
                for tree in trees:
                    runs[tree].append(run_once(argv, tree))
            for tree, measured in runs.items():
                times = [t for t, _, _ in measured]
                print(f"{mode:<10}{'this' if tree is None else 'compare':<10}"
                      f"{min(times):>8.2f}{statistics.median(times):>8.2f}"
                      f"{min(cpu for _, cpu, _ in measured):>8.2f}"
                      f"{max(rss for _, _, rss in measured):>14.0f}")


if __name__ == "__main__":
    main()
