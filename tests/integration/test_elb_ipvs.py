"""The ELB's layer 4 on IPVS (kernel tier: ip_vs; br_netfilter for the dedicated ELB's
steering): one small lab, driven in-process (every Python process costs ~30 s in the VM).

A shared and a dedicated ELB with a LoadBalancer Service each: every check passes with the
source each type promises (IPVS NAT mode keeps the client; the shared one SNATs through
conntrack), the virtual servers are in the ELB's namespace, and the health checker sets a
stopped backend's weight to 0 and back to 1.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from netlab.apply import executor, processes
from netlab.apply.state import StateDir
from netlab.capabilities import detect
from netlab.plan.planner import build
from netlab.probe import listeners as agent
from netlab.probe.lb_checks import lb_matrix
from netlab.probe.runner import Runner
from tests.helpers import load_text

LAB = "lb-ipvs"
SCENARIO = f"""\
name: {LAB}
vpc:
  subnets: [{{name: nodes, cidr: 192.168.0.0/24}}, {{name: intranet, cidr: 192.168.1.0/24}}]
hosts: [{{name: ecs-1, subnet: intranet, ports: []}}]
elbs: [{{name: shared, type: shared}}, {{name: dedicated, type: dedicated}}]
clusters:
  - name: c
    model: vpc
    nodes: [{{name: n1}}, {{name: n2}}]
    pods:
      - {{name: web, replicas: 2, node: [n1, n2], labels: {{app: web}}, ports: [{{port: 8080}}]}}
      - {{name: client, node: n1}}
    services:
      - name: via-shared
        type: LoadBalancer
        externalTrafficPolicy: Local
        selector: {{app: web}}
        ports: [{{port: 80, targetPort: 8080}}]
        annotations:
          kubernetes.io/elb.id: shared
          kubernetes.io/elb.health-check-option: '{{"delay": "1", "timeout": "2", "max_retries": "2"}}'
      - name: via-dedicated
        type: LoadBalancer
        externalTrafficPolicy: Local
        selector: {{app: web}}
        ports: [{{port: 80, targetPort: 8080}}]
        annotations:
          kubernetes.io/elb.id: dedicated
          kubernetes.io/elb.class: performance
          kubernetes.io/elb.health-check-option: '{{"delay": "1", "timeout": "2", "max_retries": "2"}}'
"""


def _ipvs(ns: str) -> str:
    return processes.run_checked(ns, ["ipvsadm", "-Ln"])


def _wait(state: StateDir, want: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads((state.path / "healthcheck.json").read_text())
        states = {m["state"] for pools in status["elbs"].values() for members in pools.values()
                  for key, m in members.items() if m["target"] == "c/n1"}
        if states == {want}:
            return
        time.sleep(0.2)
    raise AssertionError(f"n1 not {want} in every pool: {status['elbs']}")


@pytest.mark.kernel("ip_vs", "br_netfilter")
def test_elbs_on_ipvs():
    caps = detect(versions=False)
    lab = load_text(SCENARIO, features=frozenset(n for n, f in caps.features.items() if f.usable))
    assert {e.datapath for e in lab.elbs} == {"ipvs"}
    executor.up(lab, build(lab))
    try:
        results = Runner(timeout=5).run(lb_matrix(lab))
        assert [f"{r.spec.name}: {r.detail}" for r in results if not r.ok] == []
        seen = {r.spec.name.split(":")[0] + " " + r.spec.src: r.seen_source for r in results}
        assert seen["LoadBalancer (shared ELB shared, externalTrafficPolicy Local) ecs-1"] == "100.125.0.2"
        assert seen["LoadBalancer (dedicated ELB dedicated, externalTrafficPolicy Local) ecs-1"] == "192.168.1.10"
        shared = lab.elb("shared")
        virtual = _ipvs(shared.netns)
        assert f"TCP  {shared.ip}:80 rr" in virtual and "192.168.0.10:30000" in virtual and "Masq" in virtual
        # A stopped backend: weight 0 (no new connections), then back to 1.
        state = StateDir(LAB)
        (state.path / agent.STOPPED_FILE).write_text("c/web-0:8080/tcp\n")
        processes.reload(state, "agent")
        _wait(state, "unhealthy")
        assert re.search(r"192\.168\.0\.10:30000\s+Masq\s+0\s", _ipvs(shared.netns))
        (state.path / agent.STOPPED_FILE).write_text("")
        processes.reload(state, "agent")
        _wait(state, "healthy")
        assert re.search(r"192\.168\.0\.10:30000\s+Masq\s+1\s", _ipvs(shared.netns))
    finally:
        executor.down(LAB)
