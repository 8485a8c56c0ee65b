"""Tunnel model at resolve time: IPAM from per-node blocks, MTU, datapath choice, and the
scenario fields only the tunnel model takes (pure, no root)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from netlab.errors import ScenarioError
from netlab.models import MODEL_NAMES, tunnel
from tests.unit.tunnel_helpers import lab_of, scenario


def test_registered():
    assert "tunnel" in MODEL_NAMES


def test_ipam_per_node_blocks():
    lab = lab_of(scenario(nodes=3))
    c = lab.cluster("c1")
    assert [n.pod_cidr for n in c.nodes] == [IPv4Network(f"172.16.{i}.0/24") for i in range(3)]
    assert [n.pod_gateway for n in c.nodes] == [IPv4Address(f"172.16.{i}.1") for i in range(3)]
    assert {p.name: p.ip for p in c.pods} == {"a-1": IPv4Address("172.16.0.2"), "a-2": IPv4Address("172.16.0.3"),
                                             "b-1": IPv4Address("172.16.1.2")}
    assert all(p.ip in c.node(p.node).pod_cidr for p in c.pods)


def test_ipam_custom_cidr_and_block_size():
    lab = lab_of(scenario("container_cidr: 10.100.0.0/20\npod_cidr_size: 26\n"))
    c = lab.cluster("c1")
    assert [str(n.pod_cidr) for n in c.nodes] == ["10.100.0.0/26", "10.100.0.64/26"]
    assert str(c.pods[2].ip) == "10.100.0.66"


def test_ipam_block_exhausted_names_the_pod_line():
    pods = "\n".join(f"- {{name: p{i}, node: node-1}}" for i in range(14))  # a /28 holds 13 pods
    with pytest.raises(ScenarioError) as e:
        lab_of(scenario("pod_cidr_size: 28\n", pods=pods))
    assert "no pod address left" in str(e.value) and e.value.line is not None
    assert e.value.field == "clusters[0].pods[13].node"


def test_ipam_too_many_nodes_for_the_container_cidr():
    with pytest.raises(ScenarioError, match="holds only 2"):
        lab_of(scenario("container_cidr: 172.16.0.0/23\n", nodes=3, pods="[]"))


def test_no_vpc_routes_so_no_route_quota():
    # The VPC does not know the container CIDR: 250 tunnel nodes need no VPC route.
    lab = lab_of(scenario(nodes=250, pods="[]").replace("name: tl\n", "name: tl\nvpc: {route_quota: 0, "
                                                                          "subnets: [{name: n, cidr: 192.168.0.0/22}]}\n"))
    assert lab.vpc.routes == []


def test_mtu_is_underlay_minus_vxlan_overhead():
    c = lab_of(scenario()).cluster("c1")
    assert c.mtu == 1450 == 1500 - tunnel.VXLAN_OVERHEAD


def test_defaults_and_tunnel_info():
    t = lab_of(scenario()).cluster("c1").network
    assert (t.switch, t.vni, t.port, t.datapath) == ("ovs", 1, 4789, "netdev")


def test_datapath_for():
    assert tunnel.datapath_for(frozenset()) == "netdev"
    assert tunnel.datapath_for(frozenset({"vxlan", "veth"})) == "netdev"
    assert tunnel.datapath_for(frozenset({"openvswitch"})) == "system"


def test_auto_picks_system_when_the_kernel_has_openvswitch():
    lab = lab_of(scenario(), features=frozenset({"openvswitch"}))
    assert lab.cluster("c1").network.datapath == "system"


def test_explicit_netdev_even_with_the_module():
    lab = lab_of(scenario("ovs_datapath: netdev\n"), features=frozenset({"openvswitch"}))
    assert lab.cluster("c1").network.datapath == "netdev"


def test_system_without_the_module_is_an_error_naming_it():
    with pytest.raises(ScenarioError) as e:
        lab_of(scenario("ovs_datapath: system\n"))
    assert "openvswitch kernel module" in str(e.value)
    assert e.value.field == "clusters[0].ovs_datapath" and e.value.line == 7


def test_ovs_datapath_with_linux_bridge_is_an_error():
    with pytest.raises(ScenarioError, match="switch: ovs only"):
        lab_of(scenario("switch: linux-bridge\novs_datapath: netdev\n"))


def test_linux_bridge_has_no_ovs_datapath():
    t = lab_of(scenario("switch: linux-bridge\nvni: 42\n")).cluster("c1").network
    assert (t.switch, t.vni, t.datapath) == ("linux-bridge", 42, None)


@pytest.mark.parametrize("field", ["vni: 7", "switch: ovs", "ovs_datapath: auto"])
def test_tunnel_fields_on_a_vpc_cluster_are_errors(field):
    with pytest.raises(ScenarioError) as e:
        lab_of(scenario(field + "\n", model="vpc"))
    name = field.split(":")[0]
    assert e.value.field == f"clusters[0].{name}" and e.value.line == 7
    assert "model: tunnel only" in str(e.value)


@pytest.mark.parametrize("value,message", [("0", "it must be at least 1"),
                                           ("16777216", "it must be at most 16777215")])
def test_vni_range(value, message):
    with pytest.raises(ScenarioError, match=message) as e:
        lab_of(scenario(f"vni: {value}\n"))
    assert e.value.line == 7


def test_unknown_switch_lists_the_valid_ones():
    with pytest.raises(ScenarioError, match="'ovs' or 'linux-bridge'"):
        lab_of(scenario("switch: cilium\n"))


def test_macs_derive_from_addresses():
    assert tunnel.mac_of(IPv4Address("172.16.1.2")) == "0a:58:ac:10:01:02"
    node = lab_of(scenario()).cluster("c1").node("node-2")
    assert tunnel.vtep_ip(node) == IPv4Address("172.16.1.0")


def test_traits():
    lab = lab_of(scenario())
    c = lab.cluster("c1")
    n1, b1 = c.node("node-1"), next(p for p in c.pods if p.name == "b-1")
    assert tunnel.MODEL.ENCAP == "vxlan" and tunnel.MODEL.VPC_HOST_TO_POD == "blocked"
    assert tunnel.MODEL.egress_source(c, n1, b1) == n1.eth0.ip
    assert tunnel.MODEL.node_source(c, n1, b1) == n1.pod_gateway  # OVS: the stack leaves by gw0
    lb = lab_of(scenario("switch: linux-bridge\n")).cluster("c1")
    n1 = lb.node("node-1")
    a1 = next(p for p in lb.pods if p.name == "a-1")
    b1 = next(p for p in lb.pods if p.name == "b-1")
    assert tunnel.MODEL.node_source(lb, n1, a1) == IPv4Address("172.16.0.1")  # cni0
    assert tunnel.MODEL.node_source(lb, n1, b1) == IPv4Address("172.16.0.0")  # the VTEP's address
