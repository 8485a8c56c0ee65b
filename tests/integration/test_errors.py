"""Bad input and bad situations: one line, exit 2, no traceback, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab import linux
from tests.helpers import REPO, SCENARIOS, netlab

BASE = (SCENARIOS / "vpc-basic.yaml").read_text()

BAD = {
    "route-quota": (BASE.replace("  cidr: 192.168.0.0/16\n", "  cidr: 192.168.0.0/16\n  route_quota: 1\n"),
                    ":19: clusters[0].nodes: the VPC route table needs 2 routes"),
    "overlap": (BASE.replace("container_cidr: 172.16.0.0/16", "container_cidr: 192.168.0.0/20"),
                ":15: clusters[0].container_cidr: container CIDR 192.168.0.0/20 overlaps the VPC CIDR"),
    "unknown-node": (BASE.replace("{name: client, node: node-2}", "{name: client, node: node-3}"),
                     ":25: clusters[0].pods[3].node: unknown node 'node-3'"),
    "duplicate": (BASE.replace("{name: dns-1,", "{name: web-1,"),
                  ":24: clusters[0].pods[2].name: duplicate pod name 'web-1'"),
    "unknown-key": (BASE.replace("    pod_cidr_size: 24\n", "    pod_cidr_size: 24\n    podCidr: x\n"),
                    ":18: clusters[0].podCidr: unknown key 'podCidr'; valid keys:"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_is_one_line_exit_2_and_nothing_built(case, tmp_path):
    text, expected = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    done = netlab("up", str(path), "--name", f"t-bad-{case}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"netlab: error: {path}:") and expected in lines[0], lines[0]
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-t-bad-{case}.")]
    assert not Path(f"/run/netlab/t-bad-{case}").exists()
    assert netlab("validate", str(path)).returncode == 2


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    """Run netlab as uid 65534. The venv's interpreter may live where nobody cannot read it
    (pyenv under /root): then use the system python3 with the venv's packages on the path."""
    python, env = sys.executable, dict(os.environ)
    try:
        usable = subprocess.run([python, "-c", "import netlab"], user=65534, capture_output=True,
                                cwd=REPO).returncode == 0
    except PermissionError:
        usable = False
    if not usable:
        python = "/usr/bin/python3"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + site.getsitepackages())
    return subprocess.run([python, "-m", "netlab", *args], user=65534, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=60)


def test_non_root_run_is_refused_cleanly():
    done = as_nobody("up", "scenarios/vpc-basic.yaml", "--name", "t-nonroot")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "netlab: error: `netlab up` needs root to create network namespaces; run it with sudo"
    assert not Path("/run/netlab/t-nonroot").exists()
    # Reading a scenario needs no privilege.
    assert as_nobody("validate", "scenarios/vpc-basic.yaml").returncode == 0


def test_up_twice_and_down_of_unknown_lab(lab):
    lab("scenarios/vpc-basic.yaml", "t-twice")
    again = netlab("up", "scenarios/vpc-basic.yaml", "--name", "t-twice")
    assert again.returncode == 2 and "already" in again.stderr
    gone = netlab("down", "t-nosuchlab")
    assert gone.returncode == 2 and "no lab 't-nosuchlab' is up" in gone.stderr


def test_killed_up_is_undone_by_down():
    """A crash half-way through `up` (SIGKILL) leaves a state dir that `down` fully undoes."""
    name = "t-crash"
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", "scenarios/scale-200.yaml", "--name", name],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            built = [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
            if len(built) >= 30:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        record = json.loads(Path(f"/run/netlab/{name}/lab.json").read_text())
        assert record["phase"] == "building", "up finished before it could be killed"
        assert len([ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]) >= 30
        done = netlab("down", name)
        assert done.returncode == 0, done.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        if os.path.isdir(f"/run/netlab/{name}"):
            netlab("down", name)
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
    assert not Path(f"/run/netlab/{name}").exists()
