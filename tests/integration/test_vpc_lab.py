"""The VPC network model end to end on real namespaces: up, check, status, exec, down."""

from __future__ import annotations

import json
import os
from pathlib import Path

from netlab import linux
from tests.helpers import netlab
from tests.integration.conftest import host_state

SCENARIO = "scenarios/vpc-basic.yaml"


def test_vpc_basic_checks_pass_and_down_leaves_the_host_as_it_was(lab):
    before = host_state()
    lab(SCENARIO, "t-vpc")
    assert Path("/run/netlab/t-vpc/lab.json").exists()

    done = netlab("check", "t-vpc", "--json", "--junit", "/tmp/netlab-t-vpc.xml")
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stdout
    assert report["lab"] == "t-vpc"
    assert report["summary"] == {"passed": len(report["checks"]), "failed": 0}
    checks = {c["name"]: c for c in report["checks"]}
    # The contract grows by adding: the original keys keep their meaning, outcome kinds and
    # explanations come on top.
    assert set(checks[next(iter(checks))]) == {"name", "from", "to", "proto", "expect", "reached", "ok",
                                               "seen_source", "backend", "encap", "detail",
                                               "outcome", "expect_outcome", "cause", "why", "kind", "cluster",
                                               "origin", "seconds"}
    assert {c["expect"] for c in report["checks"]} <= {"reach", "blocked"}
    assert all(c["why"] and c["outcome"] for c in report["checks"])

    cross = [c for c in report["checks"] if c["name"].startswith("pod→pod across nodes")]
    assert cross and all(c["encap"] == "none" and c["reached"] for c in cross)
    assert any("plain IP 172.16.0.2→172.16.1.2" in c["detail"] for c in cross)
    # The VPC host sees the pod's own address: no SNAT in the VPC model.
    egress = checks["pod→VPC host: c1/web-1 → ecs-1:80"]
    assert egress["seen_source"] == "172.16.0.2" and egress["backend"] == "ecs-1"
    # And pods see the VPC host's address.
    assert checks["VPC host→pod: ecs-1 → c1/web-2:8080"]["seen_source"] == "192.168.0.12"
    udp = checks["scenario check: c1/client → c1/dns-1:53 udp"]
    assert udp["reached"] and udp["backend"] == "c1/dns-1"
    junit = Path("/tmp/netlab-t-vpc.xml").read_text()
    assert "<testsuite" in junit and 'classname="netlab.t-vpc.c1.pod-to-pod_across_nodes"' in junit
    assert 'time="' in junit.split("<testcase", 1)[1].split(">", 1)[0]
    os.unlink("/tmp/netlab-t-vpc.xml")

    status = json.loads(netlab("status", "t-vpc", "--json").stdout)
    objects = {o["name"]: o for o in status["objects"]}
    assert objects["web-1"] == {"name": "web-1", "kind": "pod", "cluster": "c1",
                                "netns": "nl-t-vpc.c1.web-1", "addresses": ["172.16.0.2/32"],
                                "node": "node-1", "labels": {"app": "web"}}
    assert "node" not in objects["node-1"] and "labels" not in objects["node-1"]
    assert status["services"] == []
    assert objects["vpc"]["addresses"] == ["192.168.0.1/24"] and objects["vpc"]["kind"] == "vpc"

    routes = netlab("exec", "t-vpc", "vpc", "--", "ip", "route").stdout
    assert "172.16.0.0/24 via 192.168.0.10" in routes and "172.16.1.0/24 via 192.168.0.11" in routes

    down = netlab("down", "t-vpc")
    assert down.returncode == 0 and "is down" in down.stdout
    assert not [ns for ns in linux.list_netns() if ns.startswith("nl-t-vpc.")]
    assert not Path("/run/netlab/t-vpc").exists()
    assert host_state() == before


def test_agent_answers_http_and_plain_tcp(lab):
    lab(SCENARIO, "t-agent")
    http = netlab("exec", "t-agent", "ecs-1", "--", "python3", "-c",
                  "import socket;s=socket.create_connection(('172.16.0.2',8080));"
                  "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');print(s.recv(4096).decode())")
    assert http.stdout.startswith("HTTP/1.1 200 OK")
    body = json.loads(http.stdout.split("\n\n", 1)[1])  # text mode turned \r\n into \n
    assert body["server"] == "c1/web-1" and body["client"].startswith("192.168.0.12:")


def test_failing_check_exits_1_and_says_why(lab, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(Path(SCENARIO).read_text().replace(
        "checks:\n", "checks:\n  - {from: ecs-1, to: 'c1/web-1:8081', expect: reach}\n"))
    lab(str(scenario), "t-fail")
    done = netlab("check", "t-fail", "--json", "--timeout", "0.5")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert len(bad) == 1 and bad[0]["to"] == "c1/web-1:8081" and not bad[0]["reached"]
    assert bad[0]["outcome"] == "refused" and bad[0]["cause"].startswith("TCP RST from c1/web-1 (172.16.0.2)")
    assert "not reached: refused" in bad[0]["detail"]
    assert report["summary"]["failed"] == 1
