#!/usr/bin/env python3
"""A class of N trainees on this machine: `podman kube play` of the classroom manifests
(deploy/k8s/classroom, StatefulSet expanded into N pods), timed until every lab passes
its checks; then memory in use and `podman kube down`.

Usage: sudo .venv/bin/python bench/classroom.py [--trainees N]   (needs `make image`)
Figures are wall-clock seconds; memory is MemTotal - MemAvailable, before and with the class.
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
from tests.container.tier import podman_env  # noqa: E402


def podman(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *argv], env=podman_env(), capture_output=True, text=True,
                          check=check)


def used_mib() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = lambda k: int(info[k].split()[0])  # noqa: E731
    return (kib("MemTotal") - kib("MemAvailable")) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainees", type=int, default=10)
    args = parser.parse_args()
    docs = kube.as_pods(kube.render("classroom"), replicas=args.trainees)
    containers = [f"{d['metadata']['name']}-lab" for d in docs if d["kind"] == "Pod"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(kube.dump(docs))
        f.flush()
        before = used_mib()
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
            with_class = used_mib()
            load = Path("/proc/loadavg").read_text().split()[0]
        finally:
            t = time.monotonic()
            podman("kube", "down", f.name, check=False)
            down = time.monotonic() - t
    if pending:
        sys.exit(f"not ready after {ready:.0f} s: {sorted(pending)}")
    print(f"{args.trainees} trainee labs: kube play {played:.1f} s, all checks passed at "
          f"{ready:.1f} s, kube down {down:.1f} s; memory in use {before} → {with_class} MiB "
          f"(+{(with_class - before) / args.trainees:.0f} MiB per lab); load average {load}")


if __name__ == "__main__":
    main()
