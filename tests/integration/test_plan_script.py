"""`netlab plan --script` run in a fresh set of namespaces builds a lab that works: netlab's
own checks pass on it, a plain ping crosses it, and `netlab down` removes it."""

from __future__ import annotations

import json
import os
import subprocess

from netlab import linux
from tests.helpers import build_by_script, netlab

NAME = "tr-script"


def test_script_builds_vpc_basic_by_hand(tmp_path):
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{NAME}.")]
    try:
        built = build_by_script("scenarios/vpc-basic.yaml", NAME, tmp_path, timeout=120)
        assert built.returncode == 0, built.stderr
        assert built.stdout.rstrip().endswith(f"lab {NAME} is up")
        ping = subprocess.run(["ip", "netns", "exec", f"nl-{NAME}.ecs-1", "ping", "-c1", "-W2", "172.16.1.2"],
                              capture_output=True, text=True)
        assert ping.returncode == 0, ping.stdout
        check = netlab("check", NAME, "--json")
        report = json.loads(check.stdout)
        assert check.returncode == 0, check.stdout
        assert report["summary"]["failed"] == 0 and report["summary"]["passed"] >= 15
        reached = {c["name"]: c for c in report["checks"]}
        assert reached["pod→VPC host: c1/web-1 → ecs-1:80"]["seen_source"] == "172.16.0.2"
    finally:
        down = netlab("down", NAME)
        assert down.returncode == 0, down.stderr
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{NAME}.")]
    assert not os.path.exists(f"/run/netlab/{NAME}")
