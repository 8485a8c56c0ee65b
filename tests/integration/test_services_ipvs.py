"""kube-proxy's IPVS mode on real nodes (kernel tier: needs ip_vs and dummy links)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import netlab


@pytest.mark.kernel("ip_vs", "dummy")
def test_services_in_ipvs_mode(lab):
    # Under TCG beside other VMs, building this lab took 115 s once: give it room.
    lab("scenarios/services-ipvs.yaml", "t-ipvs", timeout=600)
    done = netlab("check", "t-ipvs", "--json", "--timeout", "5", timeout=600)
    report = json.loads(done.stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert done.returncode == 0 and not bad, bad
    checks = {c["name"]: c for c in report["checks"]}
    spread = checks["pod→ClusterIP: ipvs/solo → ipvs/svc/web"]
    assert set(spread["backend"].split(", ")) == {"ipvs/web-0", "ipvs/web-1", "ipvs/web-2"}
    assert "," not in checks["pod→ClusterIP: ipvs/solo → ipvs/svc/web-sticky"]["backend"]
    assert checks["NodePort (Local): ecs-1 → ipvs/svc/solo-local via node-1"]["seen_source"] == "192.168.0.12"
    # Hairpin: IPVS mode masquerades a client's connection to itself (KUBE-LOOP-BACK), and
    # only that one; no-endpoint Services draw IPVS's own port unreachable from the ClusterIP.
    hairpin = checks["pod→own Service (hairpin): ipvs/web-0 → ipvs/svc/web"]
    assert "172.16.0.1" in hairpin["seen_source"] and "ipvs/web-0" in hairpin["backend"]
    assert "KUBE-LOOP-BACK" in hairpin["why"]
    empty = checks["Service without endpoints: ipvs/web-0 → ipvs/svc/empty"]
    assert empty["outcome"] == "rejected", empty

    node = "nl-t-ipvs.ipvs.node-1"
    ipvs = subprocess.run(["ip", "netns", "exec", node, "ipvsadm", "-Ln"], capture_output=True, text=True).stdout
    assert "TCP  10.247.0.10:80 rr" in ipvs and "-> 172.16.0.2:8080" in ipvs and "Masq" in ipvs
    assert "persistent 600" in ipvs  # web-sticky's ClientIP affinity
    dummy = subprocess.run(["ip", "-n", node, "-o", "addr", "show", "dev", "kube-ipvs0"],
                           capture_output=True, text=True).stdout
    assert "10.247.0.10/32" in dummy
    sets = subprocess.run(["ip", "netns", "exec", node, "ipset", "list", "-n"], capture_output=True, text=True).stdout
    assert "KUBE-CLUSTER-IP" in sets
