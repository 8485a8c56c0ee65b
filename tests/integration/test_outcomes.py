"""Outcome kinds on a real lab: each produced by the mechanism that should produce it, the
same every run; `blocked` never stands in for a refusal by the target; a dead agent is an
error of the lab, not a network that blocks."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from netlab.apply.state import StateDir
from tests.helpers import netlab

SCENARIO = """\
name: ck-outcomes
hosts: [{name: ecs-1}]
clusters:
  - name: c1
    model: vpc
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: web, replicas: 2, node: [node-1, node-2], labels: {app: web, tier: lab}, ports: [{port: 8080}]}
      - {name: solo, node: node-1, labels: {app: solo, tier: lab}, ports: [{port: 8080}]}
    services:
      - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
      - {name: solo-local, type: NodePort, externalTrafficPolicy: Local, selector: {app: solo},
         ports: [{port: 80, targetPort: 8080, nodePort: 30081}]}
      - {name: empty, selector: {app: nothing}, ports: [{port: 80}]}
      # every pod is an endpoint, so every client is one too (hairpin)
      - {name: all, selector: {tier: lab}, ports: [{port: 80, targetPort: 8080}]}
checks:
  - {from: ecs-1, to: "c1/web-0:8081", expect: refused}
  - {from: c1/web-1, to: "c1/svc/empty", expect: rejected}
  - {from: ecs-1, to: "c1/svc/web", expect: unreachable}
  - {from: ecs-1, to: "c1/node-2:30081", expect: dropped}
  - {from: ecs-1, to: "c1/node-1:30080", expect: reach}
  - {from: ecs-1, to: "c1/svc/web:nodeport", expect: reach, source: [c1/node-1, 172.16.0.1]}
  # must fail: refused by the pod is not blocked by the network
  - {from: ecs-1, to: "c1/web-1:8081", expect: blocked}
  # must fail: only the Service's endpoints answer
  - {from: ecs-1, to: "c1/node-1:30080", expect: reach, backend: c1/solo}
"""

EXPECTED = {  # check name → (outcome, the object that answered for a non-reach)
    "scenario check: ecs-1 → c1/web-0:8081 tcp": ("refused", "c1/web-0"),
    "scenario check: c1/web-1 → c1/svc/empty tcp": ("rejected", "c1/node-2"),
    "scenario check: ecs-1 → c1/svc/web tcp": ("unreachable", "vpc"),
    "scenario check: ecs-1 → c1/node-2:30081 tcp": ("dropped", None),
    "scenario check: ecs-1 → c1/node-1:30080 tcp": ("reach", None),
    "scenario check: ecs-1 → c1/svc/web:nodeport tcp": ("reach", None),
    "scenario check: ecs-1 → c1/web-1:8081 tcp": ("refused", "c1/web-1"),
}
MUST_FAIL = {"scenario check: ecs-1 → c1/web-1:8081 tcp"}


def _scenario(tmp_path: Path) -> str:
    path = tmp_path / "outcomes.yaml"
    path.write_text(SCENARIO)
    return str(path)


def _report(lab_name: str, *args: str) -> tuple[int, dict]:
    done = netlab("check", lab_name, "--json", *args)
    return done.returncode, json.loads(done.stdout)


def test_each_outcome_kind_is_produced_and_stable(lab, tmp_path):
    up = lab(_scenario(tmp_path), "ck-outcomes")
    assert "warning" in up.stderr and "checks[0].to: nothing serves c1/web-0:8081/tcp" not in up.stderr
    assert "checks[6].to: nothing serves c1/web-1:8081/tcp" in up.stderr  # expect: blocked, yet refused

    for run in range(20):
        code, report = _report("ck-outcomes", "--only", "scenario")
        checks = {c["name"]: c for c in report["checks"]}
        assert code == 1, report
        for name, (outcome, sender) in EXPECTED.items():
            c = checks[name]
            assert c["outcome"] == outcome, (run, c)
            if sender:
                assert c["cause"].startswith("ICMP") or c["cause"].startswith("TCP RST"), c
                assert f"from {sender} (" in c["cause"], (run, c)
        failed = {c["name"] for c in report["checks"] if not c["ok"]}
        assert failed == MUST_FAIL | {"scenario check: ecs-1 → c1/node-1:30080 tcp"}, (run, failed)
        # the same check name twice: the reach one passes, the backend one fails
        nodeport = [c for c in report["checks"] if c["name"] == "scenario check: ecs-1 → c1/node-1:30080 tcp"]
        assert [c["ok"] for c in nodeport] == [True, False]
        assert "answered by c1/web-" in nodeport[1]["detail"] and "expected c1/solo" in nodeport[1]["detail"]

    refused = checks["scenario check: ecs-1 → c1/web-1:8081 tcp"]
    assert refused["expect"] == "blocked" and "nothing listens there" in refused["detail"]
    assert checks["scenario check: c1/web-1 → c1/svc/empty tcp"]["why"].startswith(
        "kube-proxy (iptables) on node-2: KUBE-SERVICES REJECT (default/empty has no endpoints)")
    assert checks["scenario check: ecs-1 → c1/svc/web tcp"]["why"].startswith("no VPC route to 10.247.0.0/16")

    # The generated matrix: every check passes, the hairpin one masqueraded exactly when the
    # client answers itself, and every check says why.
    code, report = _report("ck-outcomes", "--only", "generated")
    assert code == 0, [c for c in report["checks"] if not c["ok"]]
    checks = {c["name"]: c for c in report["checks"]}
    hairpin = checks["pod→ClusterIP: c1/web-0 → c1/svc/all"]
    assert set(hairpin["seen_source"].split(", ")) == {"172.16.0.1", "172.16.0.2"}
    assert "KUBE-SEP-" in hairpin["why"] and "masquerades the hairpin" in hairpin["why"]
    assert checks["Service without endpoints: c1/web-0 → c1/svc/empty"]["outcome"] == "rejected"
    assert checks["NodePort (Local): ecs-1 → c1/svc/solo-local via node-2"]["outcome"] == "dropped"
    assert all(c["why"] for c in report["checks"])


def test_a_dead_agent_is_a_lab_error_not_a_blocked_network(lab, tmp_path):
    lab(_scenario(tmp_path), "ck-noagent")
    # A listener the agent does not hold (a port declared after it started) is named too.
    from netlab.probe import selftest
    from netlab.scenario.schema import Port

    state = StateDir("ck-noagent").read()
    assert selftest.problems(state) == []
    pod = state.clusters[0].pods[0]
    changed = state.model_copy(deep=True)
    changed.clusters[0].pods[0].ports.append(Port(port=8443))
    (problem,) = selftest.problems(changed)
    assert problem.startswith("the pod agent of lab ck-noagent does not serve 1 of the 5 declared ports: "
                              f"c1/{pod.name} 8443/tcp: ")

    pid = int(StateDir("ck-noagent").pidfile("agent").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)  # the agent this test's lab started
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    done = netlab("check", "ck-noagent")
    assert done.returncode == 1
    assert "lab error: the pod agent of lab ck-noagent is not running" in done.stderr
    assert "passed" not in done.stdout  # nothing was probed, so nothing passed as blocked
    code, report = _report("ck-noagent")
    assert code == 1 and report["checks"] == [] and "pod agent" in report["errors"][0]

    status = netlab("status", "ck-noagent")
    assert status.returncode == 1 and "degraded" in status.stdout
