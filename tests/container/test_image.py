"""The image: a lab runs inside a privileged container exactly as on a host, in the
container's own namespaces, and leaves nothing on the host."""

from __future__ import annotations

import re
import time

import pytest

from tests.container.conftest import alive, host_netns_inodes, lab_netns_inodes, processes_in_pidns

pytestmark = pytest.mark.container


def test_demo_passes_in_a_privileged_container(podman):
    name = podman.name("demo")
    podman.containers.append(name)
    before = set(host_netns_inodes().values())
    done = podman("run", "--rm", "--privileged", "--name", name, podman.image, "demo", check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = re.search(r"^(\d+) passed, (\d+) failed$", done.stdout, re.M)
    assert summary and int(summary[1]) > 0 and summary[2] == "0", done.stdout[-2000:]
    assert "lab overview is down" in done.stdout + done.stderr
    # The demo's lab lived in the container's /run/netns, never the host's.
    new = set(host_netns_inodes().values()) - before
    assert not [n for n in new if "overview" in n], new


def _start_twin(podman, scenario: str, lab: str) -> str:
    name = podman.name("twin")
    podman.containers.append(name)
    podman("run", "--detach", "--privileged", "--name", name, "--entrypoint", "netlab-pod",
           "--env", f"NETLAB_SCENARIO={scenario}", "--env", f"NETLAB_LAB={lab}", podman.image)
    return name


def _wait_up(podman, name: str, lab: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "is up" in podman("logs", name).stdout:
            return
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", f"{name} {state}: {podman('logs', name, check=False).stderr}"
        time.sleep(0.5)
    raise AssertionError(f"lab {lab} in {name} not up after {timeout} s")


def test_two_containers_run_the_same_lab_without_meeting(podman):
    lab = "im-twin"   # the same lab name, the same addresses, in both containers
    a = _start_twin(podman, "/src/scenarios/vpc-basic.yaml", lab)
    b = _start_twin(podman, "/src/scenarios/vpc-basic.yaml", lab)
    for c in (a, b):
        _wait_up(podman, c, lab)
    labs = {c: lab_netns_inodes(podman, c) for c in (a, b)}
    for c in (a, b):
        assert labs[c] and all(lab in n for n in labs[c].values()), labs[c]
        done = podman("exec", c, "netlab", "check", lab, check=False)
        assert done.returncode == 0, done.stdout[-3000:]
        assert re.search(r"^\d+ passed, 0 failed$", done.stdout, re.M)
    # Same names, different namespaces; none of them is the host's.
    assert sorted(labs[a].values()) == sorted(labs[b].values())
    assert not set(labs[a]) & set(labs[b])
    host = host_netns_inodes()
    assert not (set(labs[a]) | set(labs[b])) & set(host)
    assert not [n for n in host.values() if lab in n]
    # Stopping a container takes its lab down (SIGTERM → netlab down) and leaves nothing.
    pids = {c: processes_in_pidns(int(podman("inspect", "--format", "{{.State.Pid}}", c).stdout))
            for c in (a, b)}
    assert all(len(p) > 2 for p in pids.values())   # netlab-pod, sleep, the pod agent, ...
    for c in (a, b):
        podman("stop", "--time", "20", c)
        logs = podman("logs", c).stdout
        assert f"lab {lab} is down" in logs, logs[-2000:]
        assert podman("inspect", "--format", "{{.State.ExitCode}}", c).stdout.strip() == "0"
        podman("rm", c)
        assert not alive(pids[c]), f"processes of {c} outlived it: {alive(pids[c])}"
    assert not [n for n in host_netns_inodes().values() if lab in n]
