"""One lab across two machines, simulated: two privileged containers as two hosts on a
Podman network, each building its part of deploy/split/scenario.yaml (placement.yaml);
the checks that cross between them pass, and the frames between them are VXLAN.

The Podman network lives in a namespace of its own (`nsenter --net` around every Podman
command that sets networks up or down), so its bridge and firewall rules never reach the
host's root namespace."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid

import pytest

from tests.container.conftest import host_netns_inodes
from tests.container.tier import podman_env

pytestmark = pytest.mark.container

SPLIT = "/etc/netlab/split"
MACHINES = {"host-a": "192.0.2.11", "host-b": "192.0.2.12"}


@pytest.fixture
def wire():
    """A network namespace standing in for the network between the machines."""
    name = f"im-split-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _check(podman, container: str) -> dict[tuple[str, str, str], dict]:
    """The machine's check report (every check passed), by (kind, from, to)."""
    done = podman("exec", container, "netlab", "check", "split", "--json", check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] > 0
    return {(c["kind"], c["from"], c["to"]): c for c in report["checks"]}


def test_one_lab_across_two_machines(podman, wire):
    from tests.container import kube
    on_wire = ("nsenter", f"--net=/run/netns/{wire}")
    podman("network", "create", "--disable-dns", "--internal", "--subnet", "192.0.2.0/24",
           "--opt", "mtu=9000", wire, prefix=on_wire)
    podman.networks.append((wire, on_wire))
    names = {}
    for machine, address in MACHINES.items():
        names[machine] = f"{wire}-{machine}"
        podman.containers.append(names[machine])
        podman("run", "--detach", "--privileged", "--name", names[machine], "--network", wire,
               "--ip", address, "--volume", f"{kube.REPO / 'deploy' / 'split'}:{SPLIT}:ro",
               "--entrypoint", "sleep", podman.image, "infinity", prefix=on_wire)
    try:
        for machine, c in names.items():
            done = podman("exec", c, "netlab", "up", f"{SPLIT}/scenario.yaml", "--placement",
                          f"{SPLIT}/placement.yaml", "--machine", machine, check=False)
            assert done.returncode == 0, done.stderr
        a, b = names["host-a"], names["host-b"]
        # Every check runs from the machine holding its source; capture host-a's wire
        # meanwhile: what crosses between the machines is VXLAN to the other's address.
        sniff = subprocess.Popen(["podman", "exec", a, "timeout", "20", "tcpdump", "-nli", "eth0",
                                  "-c", "6", "udp", "port", "4789"], env=podman_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        out_a, out_b = _check(podman, a), _check(podman, b)
        captured = sniff.communicate(timeout=30)[0]
        assert re.search(r"192\.0\.2\.1[12]\.\d+ > 192\.0\.2\.1[12]\.4789: VXLAN", captured), captured
        # Checks that cross: pods on host-a to pods on host-b and back, the Service from
        # host-a with an endpoint on each machine, the NodePort of host-b's node.
        assert out_a[("pod→pod across nodes", "c1/web-0", "c1/web-1:8080")]["outcome"] == "reach"
        assert out_b[("pod→pod across nodes", "c1/web-1", "c1/web-0:8080")]["outcome"] == "reach"
        service = next(c for (kind, _, to), c in out_a.items()
                       if kind == "pod→ClusterIP" and to == "c1/svc/web:80")
        assert {"c1/web-0", "c1/web-1"} <= set(service["backend"].split(", ")), service
        assert out_a[("NodePort (Cluster)", "ecs-1", "c1/node-2:30080")]["outcome"] == "reach"
        assert out_b[("scenario check", "c1/client-b", "ecs-1:80")]["outcome"] == "reach"
        # Each machine holds its own part; the host holds none of it.
        netns = {m: set(podman("exec", c, "ip", "netns", "list").stdout.split()) for m, c in names.items()}
        assert any("node-1" in n for n in netns["host-a"]) and not any("node-2" in n for n in netns["host-a"])
        assert any("node-2" in n for n in netns["host-b"]) and not any("node-1" in n for n in netns["host-b"])
        assert not [n for n in host_netns_inodes().values() if "split" in n and n != wire]
        for c in names.values():   # each machine's state is its own part, whole
            status = podman("exec", c, "netlab", "status", "split", "--json", check=False)
            assert status.returncode == 0 and '"state": "up"' in status.stdout, status.stdout[-2000:]
            assert "is down" in podman("exec", c, "netlab", "down", "split").stdout
            assert podman("exec", c, "ip", "netns", "list").stdout.strip() == ""
    finally:
        for c in names.values():
            podman("rm", "--force", "--time", "0", c, check=False, prefix=on_wire)
        podman("network", "rm", "--force", wire, check=False, prefix=on_wire)
