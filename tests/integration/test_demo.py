"""`sudo make demo`'s lab, for real: the built-in overview comes up, every check passes, and
it goes down leaving nothing behind."""

from __future__ import annotations

import json

from netlab import linux
from tests.helpers import netlab


def test_the_demo_proves_the_whole_overview_and_leaves_nothing():
    done = netlab("demo", "--json", timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] >= 150
    checks = report["checks"]
    assert {c["cluster"] for c in checks} >= {"cce-vpc", "cce-tunnel", "cce-eni", None}
    kinds = {c["kind"] for c in checks}
    assert {"pod→pod across nodes", "pod→internet", "peer VPC host→pod"} <= kinds
    assert any(k.startswith("LoadBalancer") for k in kinds) and any(k.startswith("Ingress") for k in kinds)
    # what the far end sees: the pod EIP, the NAT gateway's EIP, a tunnel pod's node
    seen = {(c["from"], c["to"]): c["seen_source"] for c in checks if c["kind"] == "scenario check"}
    assert seen[("cce-eni/web-0", "internet/server:80")] == "198.51.100.12"
    assert seen[("cce-eni/web-1", "internet/server:80")] == "198.51.100.50"
    assert "is down" in done.stderr
    assert not [ns for ns in linux.list_netns() if ns.startswith("nl-overview.")]
