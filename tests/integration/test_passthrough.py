"""ELB passthrough on real namespaces (`scenarios/passthrough.yaml`): a dedicated ELB in front
of an eni cluster sends straight to the pods. A public client (through the ELB's EIP) and an
intranet host (through its private address) reach both pods, each backend sees the client's
own address, and no node's kube-proxy rule counter moves for that traffic (read from every
node's `iptables-save -c` before and after); an in-cluster client, short-circuited by
kube-proxy, moves them, which shows the counters read are the ones that would count."""

from __future__ import annotations

import json
import re

import pytest

from netlab.apply.state import StateDir
from netlab.probe.checks import CheckSpec
from netlab.probe.runner import Runner
from tests.helpers import SCENARIOS, netlab
from tests.integration.conftest import host_state, module_lab

LAB = "sg-pass"
CONNECTIONS = 16
_COUNTER = re.compile(r"^\[(\d+):(\d+)\] (.*)$")


@pytest.fixture(scope="module")
def passthrough():
    yield from module_lab(str(SCENARIOS / "passthrough.yaml"), LAB)


def kube_proxy_counters(lab) -> dict[tuple[str, str], int]:
    """(node, rule) → packets, for every rule of the Service default/web in every node's
    nat and filter tables (kube-proxy's comments name the Service on each of them)."""
    out = {}
    for node in lab.clusters[0].nodes:
        for table in ("nat", "filter"):
            dump = netlab("exec", LAB, f"turbo/{node.name}", "--", "iptables-save", "-c", "-t", table).stdout
            for line in dump.splitlines():
                m = _COUNTER.match(line)
                if m and "default/web" in m.group(3):
                    out[(node.name, m.group(3))] = int(m.group(1))
    return out


def through_the_elb(lab, src, dst_ip) -> CheckSpec:
    return CheckSpec(name=f"{src.name} → {dst_ip}:8000", src=getattr(src, "ref", src.name), src_netns=src.netns,
                     src_ip=src.eth0.ip, dst=str(dst_ip), dst_ip=dst_ip, port=8000, proto="tcp",
                     count=CONNECTIONS, allowed_backends=("turbo/web-0", "turbo/web-1"), spread="all",
                     allowed_sources=(src.eth0.ip,), turn="elb-web TCP:8000")  # one round robin


def test_every_check_passes_and_backends_see_the_client(passthrough):
    report = json.loads(netlab("check", LAB, "--json").stdout)
    rows = {c["name"]: c for c in report["checks"]}
    assert [n for n, c in rows.items() if not c["ok"]] == []
    elb = [c for n, c in rows.items() if n.startswith("LoadBalancer (dedicated ELB elb-web")]
    assert {c["from"]: c["seen_source"] for c in elb} == {
        "internet/client": "203.0.113.10", "ecs-1": "192.168.1.10",
        "turbo/client": "192.168.0.10"}  # the last: short-circuited on its node, SNAT to the node IP
    assert all("straight to the pod (passthrough)" in n for n, c in rows.items()
               if n.startswith("LoadBalancer") and c["from"] != "turbo/client")


def test_no_nodes_kube_proxy_rule_counts_the_elbs_traffic(passthrough):
    lab = StateDir(LAB).read()
    elb = lab.elbs[0]
    (eip,) = lab.eips_of(elb.ref)
    before = kube_proxy_counters(lab)
    assert before, "no kube-proxy rule of default/web found"
    specs = [through_the_elb(lab, lab.public_hosts()[0], eip), through_the_elb(lab, lab.hosts[0], elb.ip)]
    results = Runner(timeout=5).run(specs)
    assert [f"{r.spec.name}: {r.detail}" for r in results if not r.ok] == []
    assert {s for r in results for s in r.sources} == {"203.0.113.10", "192.168.1.10"}
    assert sorted({b for r in results for b in r.backends}) == ["turbo/web-0", "turbo/web-1"]
    after = kube_proxy_counters(lab)
    assert {k: (before[k], n) for k, n in after.items() if n != before.get(k)} == {}
    # An in-cluster client's connection to the same address is kube-proxy's: it counts.
    pod = next(p for p in lab.clusters[0].pods if p.name == "client")
    inside = CheckSpec(name="client → ELB", src="turbo/client", src_netns=pod.netns, src_ip=pod.ip,
                       dst=str(elb.ip), dst_ip=elb.ip, port=8000, proto="tcp",
                       allowed_backends=("turbo/web-0", "turbo/web-1"))
    (result,) = Runner(timeout=5).run([inside])
    assert result.ok, result.detail
    moved = {k for k, n in kube_proxy_counters(lab).items() if n != after.get(k)}
    assert ("node-1", next(r for node, r in after if "loadbalancer IP" in r and elb.ip.exploded in r)) in moved


def test_down_leaves_the_host_as_it_was(passthrough):
    assert netlab("down", LAB).returncode == 0
    assert host_state() == passthrough
