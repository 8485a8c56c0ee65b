"""The eni model (Cloud Native Network 2.0) end to end on real namespaces: pods on sub-ENIs
holding pod-subnet addresses, Services through the veth path, security groups at the VPC
side, changed live with `netlab sg`; ipvlan, 802.1Q and IPVS in the kernel tier."""

from __future__ import annotations

import json
import subprocess
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from netlab import linux
from netlab.lab import naming
from tests.helpers import netlab
from tests.integration.conftest import host_state

BASIC = "scenarios/eni-basic.yaml"
GUARDED_8080 = ("--inbound", "--protocol", "tcp", "--port", "8080", "--remote-ip-prefix", "192.168.1.0/24")


def _check(lab: str, *extra: str) -> dict:
    """Every check ok; the checks by name, without the security-group reason in brackets."""
    done = netlab("check", lab, "--json", *extra)
    report = json.loads(done.stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert done.returncode == 0 and not bad, bad
    return {c["name"].split(" [")[0]: c for c in report["checks"]}


def _exec(lab: str, obj: str, *argv: str) -> str:
    done = netlab("exec", lab, obj, "--", *argv)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_eni_basic_pods_are_vpc_members_and_groups_follow_netlab_sg(lab):
    before = host_state()
    lab(BASIC, "en-basic")
    checks = _check("en-basic")

    # Pods hold pod-subnet addresses, and the VPC host pings every one of them directly.
    status = json.loads(netlab("status", "en-basic", "--json").stdout)
    pods = [o for o in status["objects"] if o["kind"] == "pod"]
    sub_eni = [p for p in pods if not p["name"].startswith("agent")]  # agent-*: hostNetwork
    assert len(sub_eni) == 5
    for p in sub_eni:
        (address,) = [a for a in p["addresses"] if a.endswith("/24")]
        assert ip_address(address.split("/")[0]) in ip_network("192.168.2.0/24"), p
        assert " 0% packet loss" in _exec("en-basic", "ecs-1", "ping", "-c", "1", "-W", "2", address.split("/")[0])

    # Across nodes the packets cross the trunk as they are; the VPC route table gains nothing.
    cross = [c for n, c in checks.items() if n.startswith("pod→pod across nodes") and c["expect"] == "reach"]
    assert cross and all(c["encap"] == "none" and "plain IP 192.168.2." in c["detail"] for c in cross)
    routes = _exec("en-basic", "vpc", "ip", "route").splitlines()
    assert len(routes) == 3 and not any(" via " in r for r in routes), routes
    # A VPC host reaches a pod with its own address, a pod reaches the host with the pod's.
    assert checks["VPC host→pod: ecs-1 → c1/web-0:8080"]["seen_source"] == "192.168.1.10"
    assert checks["pod→VPC host: c1/web-0 → ecs-1:80"]["seen_source"] == "192.168.2.10"
    # Services: ClusterIP from a pod (SNAT to its node), NodePort, Local for hostNetwork.
    assert checks["pod→ClusterIP: c1/client → c1/svc/web"]["seen_source"] == "192.168.0.10"
    assert checks["NodePort (Local): ecs-1 → c1/svc/agent via node-2"]["backend"] == "c1/agent-1"

    # The security group: 8080 admitted from the intranet, 9090 refused (dropped).
    admitted = "security group: ecs-1 → c1/guarded:8080 tcp admitted"
    refused = "security group: ecs-1 → c1/guarded:9090 tcp blocked"
    assert checks[admitted]["reached"] and not checks[refused]["reached"]
    assert "no inbound rule of guarded admits tcp/9090 from 192.168.1.10" in checks[refused]["why"]
    assert checks[refused]["outcome"] == "dropped" and checks[refused]["ok"]

    # Removing the rule on the running lab turns the reach into blocked; restoring it, back.
    done = netlab("sg", "en-basic", "remove", "guarded", *GUARDED_8080)
    assert done.returncode == 0, done.stderr
    after = _check("en-basic")
    assert "security group: ecs-1 → c1/guarded:8080 tcp blocked" in after and admitted not in after
    assert not after["security group: ecs-1 → c1/guarded:8080 tcp blocked"]["reached"]
    assert json.loads(Path("/run/netlab/en-basic/lab.json").read_text())["lab"]["security_groups"][0]["inbound"] \
        == [{"protocol": "icmp", "port": None, "remote_ip_prefix": "192.168.1.0/24", "remote_group": None,
             "description": ""}]
    assert netlab("sg", "en-basic", "add", "guarded", *GUARDED_8080).returncode == 0
    assert _check("en-basic")[admitted]["reached"]
    again = netlab("sg", "en-basic", "add", "guarded", *GUARDED_8080)
    assert again.returncode == 2 and "already has the inbound rule" in again.stderr

    shown = netlab("show", "en-basic", "c1/node-1")
    assert shown.returncode == 0 and "macvlan mode vepa" in shown.stdout and "snat to 192.168.0.10" in shown.stdout

    assert netlab("down", "en-basic").returncode == 0
    assert not [ns for ns in linux.list_netns() if ns.startswith(naming.lab_prefix("en-basic"))]
    assert host_state() == before


@pytest.mark.parametrize("old,new,where", [
    ("{name: node-2, subnet: nodes}", "{name: node-2, subnet: nodes, sub_eni_quota: 1}", "clusters[0].pods[2].node"),
    ("{name: pods, cidr: 192.168.2.0/24}\n", "{name: pods, cidr: 192.168.2.0/29}\n", "clusters[0].pods[0]"),
    ("service_cidr: 10.247.0.0/16", "service_cidr: 192.168.1.0/24", "clusters[0].service_cidr"),
    ("Local, selector: {app: agent}", "Local, selector: {app: web}", "clusters[0].services[2].externalTrafficPolicy"),
])
def test_what_the_service_refuses_leaves_nothing_behind(tmp_path, old, new, where):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(Path(BASIC).read_text().replace(old, new))
    done = netlab("up", str(scenario), "--name", "en-bad")
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "bad.yaml:" in done.stderr and where in done.stderr
    assert not [ns for ns in linux.list_netns() if ns.startswith(naming.lab_prefix("en-bad"))]
    assert not Path("/run/netlab/en-bad").exists()


def test_eni_nftables_services_and_scale(lab, tmp_path):
    scenario = tmp_path / "eni-nft.yaml"
    scenario.write_text(Path(BASIC).read_text().replace("proxy_mode: iptables", "proxy_mode: nftables"))
    lab(str(scenario), "en-nft")
    _check("en-nft")
    done = netlab("scale", "en-nft", "c1/web", "--replicas", "5")
    assert done.returncode == 0 and "web-4 (node-1, 192.168.2.16)" in done.stdout, done.stdout + done.stderr
    checks = _check("en-nft")
    assert set(checks["pod→ClusterIP: c1/client → c1/svc/web"]["backend"].split(", ")) == \
        {f"c1/web-{i}" for i in range(5)}
    assert "192.168.2.16 : jump in-c1/web-4" in _exec("en-nft", "vpc", "nft", "list", "table", "ip", "netlab-sg")
    assert netlab("scale", "en-nft", "c1/web", "--replicas", "1").returncode == 0
    _check("en-nft")
    assert "web-4" not in _exec("en-nft", "vpc", "nft", "list", "table", "ip", "netlab-sg")


ELB_LAB = """\
name: en-elb
vpc:
  subnets:
    - {name: nodes, cidr: 192.168.0.0/24}
    - {name: intranet, cidr: 192.168.1.0/24}
    - {name: pods, cidr: 192.168.2.0/24}
internet:
  hosts: [{name: client, ports: []}]
hosts:
  - {name: ecs-1, subnet: intranet, ports: []}
elbs:
  - {name: elb-shared, type: shared}
  - {name: elb-dedicated, type: dedicated}
eips:
  - {bind: elb/elb-shared}
  - {bind: elb/elb-dedicated}
clusters:
  - name: c1
    model: eni
    pod_subnet: pods
    nodes: [{name: node-1, subnet: nodes}, {name: node-2, subnet: nodes}]
    pods:
      - {name: web, replicas: 2, node: [node-1, node-2], labels: {app: web}, ports: [{port: 8080}]}
      - {name: client, node: node-1}
    services:
      - name: web-shared
        type: LoadBalancer
        selector: {app: web}
        ports: [{port: 8000, targetPort: 8080}]
        annotations: {kubernetes.io/elb.id: elb-shared, kubernetes.io/elb.class: union}
      - name: web-dedicated
        type: LoadBalancer
        selector: {app: web}
        ports: [{port: 8001, targetPort: 8080}]
        annotations: {kubernetes.io/elb.id: elb-dedicated, kubernetes.io/elb.class: performance}
"""


def test_eni_pods_behind_elbs_and_their_security_groups(lab, tmp_path):
    """A dedicated ELB sends straight to eni pods with the client's address: the default ENI
    group refuses the internet until a rule admits it. A pod's own calls to its Services'
    ELB addresses are short-circuited by kube-proxy on its node (policy rules per listener);
    its answers to the ELB's health checks still leave by the sub-ENI."""
    scenario = tmp_path / "eni-elb.yaml"
    scenario.write_text(ELB_LAB)
    lab(str(scenario), "en-elb")
    checks = _check("en-elb")
    via_eip = "LoadBalancer (dedicated ELB elb-dedicated, externalTrafficPolicy Cluster): internet/client → " \
              "c1/svc/web-dedicated at 198.51.100.11:8001"
    (refused,) = [c for n, c in checks.items() if n.startswith(via_eip)]
    assert refused["expect"] == "blocked" and "no inbound rule of c1-cce-eni admits tcp/8080" in refused["why"]
    short = [c for n, c in checks.items() if n.startswith("LoadBalancer") and "c1/client → c1/svc/web-dedicated" in n]
    assert short and all(c["seen_source"] == "192.168.0.10" for c in short)  # kube-proxy's SNAT on node-1
    rules = _exec("en-elb", "c1/client", "ip", "rule")
    assert "to 198.51.100.11 ipproto tcp dport 8001 lookup 100" in rules

    done = netlab("sg", "en-elb", "add", "c1-cce-eni", "--inbound", "--protocol", "tcp", "--port", "8080")
    assert done.returncode == 0, done.stderr
    admitted = [c for n, c in _check("en-elb").items() if n.startswith(via_eip)]
    assert admitted[0]["expect"] == "reach" and admitted[0]["seen_source"] == "203.0.113.10"


def _ip(netns: str, *argv: str) -> str:
    done = subprocess.run(["ip", "-n", netns, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.kernel("ipvlan", "vlan", "ip_vs", "dummy", "br_netfilter")
def test_eni_ipvlan_ipvs_and_vlan_sub_enis():
    """One small lab in the VM, driven in-process: under TCG every interpreter start costs
    seconds, so no CLI round trips here."""
    from netlab.apply import executor
    from netlab.apply.state import list_labs
    from netlab.lab.resolve import resolve
    from netlab.plan.planner import build
    from netlab.probe.checks import matrix
    from netlab.probe.runner import Runner
    from netlab.scenario import loader

    scenario, source = loader.load(Path("scenarios/eni-kernel.yaml"))
    lab = resolve(scenario.model_copy(update={"name": "en-kt"}), source, None)
    try:
        executor.up(lab, build(lab))
        results = Runner(timeout=5).run(matrix(lab))
        bad = [r.as_json() for r in results if not r.ok]
        assert not bad, bad
        checks = {r.spec.name.split(" [")[0]: r for r in results}
        for cluster in ("ipvl", "vlan"):
            assert set(checks[f"pod→ClusterIP: {cluster}/client → {cluster}/svc/web"].backends) == \
                {f"{cluster}/web-0", f"{cluster}/web-1"}
            assert checks[f"pod→pod across nodes: {cluster}/web-0 → {cluster}/web-1:8080"].encap == "none"
        assert checks["security group: ecs-1 → vlan/guarded:8080 tcp admitted"].reached
        assert not checks["security group: ecs-1 → vlan/guarded:9090 tcp blocked"].reached

        ipvl, vlan = lab.cluster("ipvl"), lab.cluster("vlan")
        details = _ip(next(p for p in ipvl.pods if p.name == "web-0").netns, "-d", "link", "show", "eth0")
        assert "ipvlan" in details and "mode l2 vepa" in details
        ipvs = subprocess.run(["ip", "netns", "exec", ipvl.node("node-1").netns, "ipvsadm", "-Ln"],
                              capture_output=True, text=True, timeout=60).stdout
        assert "-> 192.168.2.11:8080" in ipvs
        web0 = next(p for p in vlan.pods if p.name == "web-0")
        details = _ip(web0.netns, "-d", "link", "show", "eth0")
        assert "vlan protocol 802.1Q id 1" in details and "0a:58:c0:a8:03:0a" in details
        port = _ip(lab.vpc.netns, "-d", "link", "show", web0.network.vpc_port)
        assert "vlan protocol 802.1Q id 1" in port and "master br-pods-b" in port
    finally:
        if lab.name in list_labs():
            executor.down(lab.name)
    assert not [ns for ns in linux.list_netns() if ns.startswith(naming.lab_prefix("en-kt"))]
