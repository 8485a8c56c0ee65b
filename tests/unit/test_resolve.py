"""Resolve: IPAM, naming and the refusals the real service makes, each with file:line."""

from ipaddress import ip_address, ip_network

import pytest

from netlab.errors import ScenarioError
from tests.helpers import load_text

BASE = """\
name: t
hosts:
  - {name: ecs-1}
clusters:
  - name: c1
    model: vpc
    nodes:
      - {name: n1}
      - {name: n2}
    pods:
      - {name: a, node: n1}
      - {name: b, node: n1}
      - {name: c, node: n2}
"""


def err(text) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_text(text)
    return e.value


def test_ipam_nodes_hosts_pods_and_routes():
    lab = load_text(BASE)
    c = lab.clusters[0]
    assert [str(n.eth0.address) for n in c.nodes] == ["192.168.0.10/24", "192.168.0.11/24"]
    assert str(lab.hosts[0].eth0.address) == "192.168.0.12/24"
    assert [str(n.pod_cidr) for n in c.nodes] == ["172.16.0.0/24", "172.16.1.0/24"]
    assert [str(n.pod_gateway) for n in c.nodes] == ["172.16.0.1", "172.16.1.1"]
    assert [str(p.ip) for p in c.pods] == ["172.16.0.2", "172.16.0.3", "172.16.1.2"]
    assert [(str(r.destination), str(r.nexthop)) for r in lab.vpc.routes] == [
        ("172.16.0.0/24", "192.168.0.10"), ("172.16.1.0/24", "192.168.0.11")]
    assert lab.vpc.subnets[0].gateway.ip == ip_address("192.168.0.1")


def test_names_carry_the_lab():
    lab = load_text(BASE)
    assert lab.vpc.netns == "nl-t.vpc"
    assert lab.hosts[0].netns == "nl-t.ecs-1"
    assert lab.clusters[0].pods[0].netns == "nl-t.c1.a"
    assert all(ns.startswith("nl-t.") for ns in lab.netns_names())
    assert len(set(lab.netns_names())) == len(lab.netns_names())


def test_explicit_ips_are_honoured_and_skipped():
    lab = load_text(BASE.replace("{name: n1}", "{name: n1, ip: 192.168.0.11}"))
    assert [str(n.eth0.ip) for n in lab.clusters[0].nodes] == ["192.168.0.11", "192.168.0.10"]


def test_explicit_ip_outside_subnet():
    e = err(BASE.replace("{name: n1}", "{name: n1, ip: 10.0.0.5}"))
    assert e.line == 8 and e.field == "clusters[0].nodes[0].ip" and "not a usable address" in str(e)


def test_explicit_ip_is_gateway():
    e = err(BASE.replace("{name: n1}", "{name: n1, ip: 192.168.0.1}"))
    assert "gateway" in str(e)


def test_duplicate_explicit_ip():
    e = err(BASE.replace("{name: n1}", "{name: n1, ip: 192.168.0.20}")
            .replace("{name: n2}", "{name: n2, ip: 192.168.0.20}"))
    assert e.line == 9 and "already used on line 8" in str(e)


def test_route_quota_exceeded():
    e = err(BASE.replace("name: t\n", "name: t\nvpc: {route_quota: 1}\n"))
    assert e.file == "test.yaml" and e.line == 8 and e.field == "clusters[0].nodes"
    assert "needs 2 routes" in str(e) and "route_quota is 1" in str(e)


def test_overlap_container_and_vpc():
    e = err(BASE.replace("    model: vpc\n", "    model: vpc\n    container_cidr: 192.168.128.0/17\n"))
    assert e.field == "clusters[0].container_cidr" and e.line == 7
    assert "overlaps the VPC CIDR 192.168.0.0/16" in str(e)


def test_overlap_service_and_container():
    e = err(BASE.replace("    model: vpc\n", "    model: vpc\n    service_cidr: 172.16.5.0/24\n"))
    assert e.field == "clusters[0].service_cidr" and "overlaps container CIDR of cluster 'c1'" in str(e)


def test_two_clusters_may_share_a_service_cidr_but_not_a_container_cidr():
    two = BASE + """\
  - name: c2
    model: vpc
    container_cidr: 172.17.0.0/16
    nodes: [{name: m1}]
"""
    lab = load_text(two)
    assert lab.clusters[1].service_cidr == lab.clusters[0].service_cidr
    e = err(two.replace("172.17.0.0/16", "172.16.0.0/16"))
    assert e.field == "clusters[1].container_cidr" and "overlaps container CIDR of cluster 'c1'" in str(e)


def test_pod_on_unknown_node():
    e = err(BASE.replace("{name: c, node: n2}", "{name: c, node: n9}"))
    assert (e.line, e.field) == (13, "clusters[0].pods[2].node")
    assert "unknown node 'n9'" in str(e) and "n1, n2" in str(e)


def test_duplicate_names():
    e = err(BASE.replace("{name: b, node: n1}", "{name: a, node: n1}"))
    assert e.line == 12 and "duplicate pod name 'a' (first on line 11)" in str(e)
    e = err(BASE.replace("{name: n2}", "{name: n1}"))
    assert "duplicate node name 'n1'" in str(e)


def test_node_and_pod_may_not_share_a_namespace_name():
    e = err(BASE.replace("{name: c, node: n2}", "{name: n2, node: n2}"))
    assert "collides" in str(e) and "nl-t.c1.n2" in str(e)


def test_host_named_vpc_is_refused():
    e = err(BASE.replace("{name: ecs-1}", "{name: vpc}"))
    assert "VPC router" in str(e)


def test_unknown_subnet():
    e = err(BASE.replace("{name: ecs-1}", "{name: ecs-1, subnet: dmz}"))
    assert e.field == "hosts[0].subnet" and "unknown subnet 'dmz'; subnets: nodes" in str(e)


def test_subnet_outside_vpc():
    e = err(BASE.replace("name: t\n", "name: t\nvpc: {subnets: [{name: s, cidr: 10.1.0.0/24}]}\n"))
    assert "not inside the VPC CIDR" in str(e)


def test_too_many_nodes_for_container_cidr():
    e = err(BASE.replace("    model: vpc\n", "    model: vpc\n    container_cidr: 172.16.0.0/24\n"))
    assert "holds only 1" in str(e)


def test_too_many_pods_for_a_node_block():
    pods = "".join(f"      - {{name: p{i}, node: n1}}\n" for i in range(6))
    text = BASE.replace("    model: vpc\n", "    model: vpc\n    pod_cidr_size: 29\n") + pods
    e = err(text)
    assert "no pod address left in 172.16.0.0/29" in str(e)


def test_subnet_runs_out_of_addresses():
    text = BASE.replace("name: t\n", "name: t\nvpc: {subnets: [{name: s, cidr: 192.168.0.0/28}]}\n")
    nodes = "".join(f"      - {{name: x{i}}}\n" for i in range(6))
    e = err(text.replace("      - {name: n2}\n", "      - {name: n2}\n" + nodes))
    assert "no free address left" in str(e)


@pytest.mark.parametrize("check, message", [
    ("{from: ecs-9, to: c1/a}", "unknown object 'ecs-9'"),
    ("{from: ecs-1, to: c9/a}", "unknown cluster 'c9'"),
    ("{from: ecs-1, to: c1/zz}", "has no node or pod 'zz'"),
    ("{from: ecs-1, to: 'c1/a:99999'}", "not a port number"),
    ("{from: ecs-1, to: 8.8.8.8}", "not an address of this lab"),
    ("{from: ecs-1, to: c1/a, proto: tcp}", "needs a port"),
])
def test_bad_check_references(check, message):
    e = err(BASE + f"checks:\n  - {check}\n")
    assert e.line == 15 and message in str(e)


def test_check_may_name_a_lab_address():
    lab = load_text(BASE + "checks:\n  - {from: ecs-1, to: '172.16.0.2:80'}\n")
    assert lab.checks[0].to == "172.16.0.2:80"


def test_pod_cidr_size_larger_than_container():
    e = err(BASE.replace("    model: vpc\n", "    model: vpc\n    container_cidr: 172.16.0.0/24\n    pod_cidr_size: 16\n"))
    assert "larger than the container CIDR" in str(e)


def test_vpc_cidr_default_is_the_design_plan():
    lab = load_text(BASE)
    assert lab.vpc.cidr == ip_network("192.168.0.0/16")
