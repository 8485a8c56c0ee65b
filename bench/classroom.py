#!/usr/bin/env python3
"""A class of N trainees on this machine: `podman kube play` of the classroom manifests
(deploy/k8s/classroom, StatefulSet expanded into N pods), timed until every lab passes
its checks; then memory in use and `podman kube down`.

Usage: sudo .venv/bin/python bench/classroom.py [--trainees N]   (needs `make image`)
Figures are wall-clock seconds; memory is the resident size of every process in the lab
pods (netlab-pod, the pod agent, ...; the kernel's own memory for namespaces and links is
not in it), and the namespaces are the labs' own, counted inside the pods.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.container import kube  # noqa: E402
from tests.container.conftest import processes_in_pidns  # noqa: E402
from tests.container.tier import podman_env  # noqa: E402


def podman(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *argv], env=podman_env(), capture_output=True, text=True,
                          check=check)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pod_usage(container: str) -> tuple[int, int]:
    """(resident KiB of the pod's processes, lab namespaces in the pod)."""
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", container).stdout)
    netns = podman("exec", container, "ip", "netns", "list").stdout.splitlines()
    return sum(rss_kib(p) for p in processes_in_pidns(pid)), len(netns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainees", type=int, default=10)
    args = parser.parse_args()
    docs = kube.as_pods(kube.render("classroom"), replicas=args.trainees)
    containers = [f"{d['metadata']['name']}-lab" for d in docs if d["kind"] == "Pod"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(kube.dump(docs))
        f.flush()
        volumes = set(podman("volume", "ls", "--quiet").stdout.split())
        start = time.monotonic()
        try:
            podman("kube", "play", "--network", "none", f.name)
            played = time.monotonic() - start
            pending = set(containers)
            while pending and time.monotonic() - start < 900:
                for c in sorted(pending):
                    if podman("exec", c, "netlab-pod", "check", check=False).returncode == 0:
                        pending.discard(c)
                time.sleep(1)
            ready = time.monotonic() - start
            usage = [pod_usage(c) for c in containers]
            load = Path("/proc/loadavg").read_text().split()[0]
        finally:
            t = time.monotonic()
            podman("kube", "down", f.name, check=False)
            down = time.monotonic() - t
            for v in set(podman("volume", "ls", "--quiet").stdout.split()) - volumes:
                podman("volume", "rm", "--force", v, check=False)   # the ConfigMap's
    if pending:
        sys.exit(f"not ready after {ready:.0f} s: {sorted(pending)}")
    print(f"{args.trainees} trainee labs: kube play {played:.1f} s, all checks passed at "
          f"{ready:.1f} s, kube down {down:.1f} s; per lab: {sum(u[1] for u in usage) / len(usage):.0f} "
          f"namespaces, {sum(u[0] for u in usage) / len(usage) / 1024:.0f} MiB resident; "
          f"load average {load}")


if __name__ == "__main__":
    main()
