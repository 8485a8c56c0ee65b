"""The eni model at resolve and plan time: pod-subnet addresses, the limits the service
enforces (located errors), the three sub-ENI kinds, hostNetwork pods, `netlab scale` (pure,
no root)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, ip_address

import pytest

from netlab.capabilities import KERNEL_FEATURES
from netlab.errors import ScenarioError, UserError
from netlab.lab import scale, services
from netlab.lab.model import Lab
from netlab.models import eni
from netlab.plan.ops import AddLink, AddNetns, AddRoute, DelLink, NftApply, SetBridgePort, SetLink
from netlab.plan.planner import build
from netlab.scenario import loader
from tests.helpers import load_text

ALL = frozenset(KERNEL_FEATURES)
BASIC = loader.builtin_path("eni-basic").read_text()


def basic(text: str = BASIC, features=ALL) -> Lab:
    return load_text(text, features=features)


def err(text: str, features=ALL) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_text(text, features=features)
    return e.value


def test_pods_hold_pod_subnet_addresses_and_the_vpc_gains_no_route():
    lab = basic()
    c = lab.cluster("c1")
    assert c.container_cidr == IPv4Network("192.168.2.0/24")  # kube-proxy's cluster CIDR
    assert not lab.vpc.routes
    own = {p.name: p.ip for p in c.netns_pods()}
    assert own == {"web-0": ip_address("192.168.2.10"), "web-1": ip_address("192.168.2.11"),
                   "web-2": ip_address("192.168.2.12"), "client": ip_address("192.168.2.13"),
                   "guarded": ip_address("192.168.2.14")}
    web0 = next(p for p in c.pods if p.name == "web-0")
    assert web0.network.mac == "0a:58:c0:a8:02:0a" and web0.network.vlan_id is None
    assert web0.network.security_groups == ["c1-cce-eni"]
    assert next(p for p in c.pods if p.name == "guarded").network.security_groups == ["guarded"]
    assert [n.network.trunk_port for n in c.nodes] == ["t-c1-node-1", "t-c1-node-2"]
    # The service's default group: everything from its members and from the VPC CIDR.
    default = lab.security_group("c1-cce-eni")
    assert [r.text("inbound") for r in default.inbound] == ["all from group c1-cce-eni", "all from 192.168.0.0/16"]


def test_host_network_pods_are_their_node():
    lab = basic()
    c = lab.cluster("c1")
    agents = [p for p in c.pods if p.hostNetwork]
    assert [(p.name, p.netns, p.ip) for p in agents] == [
        ("agent-0", c.node("node-1").netns, c.node("node-1").eth0.ip),
        ("agent-1", c.node("node-2").netns, c.node("node-2").eth0.ip)]
    assert len(lab.netns_names()) == len(set(lab.netns_names()))
    ops = build(lab).ops
    assert not [op for op in ops if isinstance(op, AddNetns) and "agent" in op.netns]
    (slice_,) = services.endpoint_slices(next(s for s in c.services if s.name == "agent"), c)
    assert [e["addresses"] for e in slice_["endpoints"]] == [["192.168.0.10"], ["192.168.0.11"]]


def test_host_network_pods_in_the_vpc_model_too():
    text = loader.builtin_path("vpc-basic").read_text().replace(
        "      - {name: client, node: node-2}",
        "      - {name: client, node: node-2}\n"
        "      - {name: exporter, node: node-1, hostNetwork: true, labels: {app: exp}, ports: [{port: 9100}]}")
    lab = load_text(text)
    c = lab.cluster("c1")
    exporter = next(p for p in c.pods if p.name == "exporter")
    assert exporter.ip == c.node("node-1").eth0.ip and exporter.netns == c.node("node-1").netns
    assert exporter not in c.pods_on("node-1")
    assert [p.ip for p in c.netns_pods()] == [IPv4Address(f"172.16.{a}.{b}") for a, b in ((0, 2), (1, 2), (0, 3), (1, 3))]
    e = err(text.replace("exporter, node: node-1", "exporter, replicas: 2, node: [node-1]"))
    assert "hostNetwork pod 'exporter-1' needs TCP port 9100 on node 'node-1'" in str(e)
    assert e.field == "clusters[0].pods[4].ports"


@pytest.mark.parametrize("old,new,field,message", [
    ("- {name: node-2, subnet: nodes}", "- {name: node-2, subnet: nodes, sub_eni_quota: 1}",
     "clusters[0].pods[2].node",
     "node 'node-2' would hold 2 sub-ENIs, but pods per node = min(max_pods 110, sub_eni_quota 1) = 1"),
    ("proxy_mode: iptables", "proxy_mode: iptables\n    max_pods: 2", "clusters[0].pods[1].node",
     "node 'node-1' would run 3 pods, above max_pods 2"),
    ("{name: pods, cidr: 192.168.2.0/24}\n", "{name: pods, cidr: 192.168.2.0/28}\n", "clusters[0].pods[2]",
     "pod subnet 'pods' (192.168.2.0/28) has no free address left for pod 'guarded': in the eni model"),
    ("service_cidr: 10.247.0.0/16", "service_cidr: 192.168.2.0/24", "clusters[0].service_cidr",
     "Service CIDR 192.168.2.0/24 overlaps VPC subnet 'pods' (192.168.2.0/24); in the eni model"),
    ("externalTrafficPolicy: Local, selector: {app: agent}", "externalTrafficPolicy: Local, selector: {app: web}",
     "clusters[0].services[2].externalTrafficPolicy",
     "externalTrafficPolicy Local needs hostNetwork backends in the eni model, but it selects pod 'web'"),
    ("pod_subnet: pods", "pod_subnet: podz", "clusters[0].pod_subnet", "unknown subnet 'podz'; subnets: nodes"),
    ("securityGroups: [guarded]", "securityGroups: [guarded, nope]",
     "clusters[0].securityGroups[0].securityGroups[1]", "unknown security group 'nope'"),
    ("remote_ip_prefix: 192.168.1.0/24}\n      - {protocol: icmp", "remote_group: nope}\n      - {protocol: icmp",
     "security_groups[0].inbound[0].remote_group", "unknown security group 'nope'"),
    ("{protocol: tcp, port: 8080,", "{protocol: icmp, port: 8080,", "security_groups[0].inbound[0].port",
     "a port needs protocol tcp or udp, not icmp"),
    ("  - name: guarded\n    description", "  - name: c1-cce-eni\n    description",
     "security_groups[0].name", "'c1-cce-eni' is the name of a group the service creates for a cluster"),
])
def test_what_the_service_refuses_is_a_located_error(old, new, field, message):
    assert old in BASIC
    text = BASIC.replace(old, new)
    if "c1-cce-eni" in new:
        text = text.replace("securityGroups: [guarded]", "securityGroups: [c1-cce-eni]")
    if "/28" in new:
        text = text.replace("{name: web, replicas: 3", "{name: web, replicas: 4")
    e = err(text)
    assert e.field == field and message in str(e) and e.line is not None, str(e)
    assert "\n" not in str(e)


def test_more_than_five_groups_per_pod():
    text = BASIC.replace("security_groups:\n", "security_groups:\n" + "".join(
        f"  - {{name: g{i}}}\n" for i in range(5)))
    text = text.replace("securityGroups: [guarded]}", "securityGroups: [guarded, g0, g1]}\n"
                        "      - {name: more, podSelector: {matchLabels: {role: guarded}}, securityGroups: [g2, g3, g4]}")
    e = err(text)
    assert e.field == "clusters[0].securityGroups[1].securityGroups"
    assert "pod 'guarded' would get 6 security groups" in str(e) and "at most 5" in str(e)


@pytest.mark.parametrize("kind,feature,module", [("ipvlan", "ipvlan", "ipvlan"), ("vlan", "vlan", "8021q")])
def test_a_sub_eni_kind_this_kernel_lacks_names_the_module(kind, feature, module):
    text = BASIC.replace("sub_eni: macvlan", f"sub_eni: {kind}")
    e = err(text, features=ALL - {feature})
    assert e.field == "clusters[0].sub_eni" and f"needs the {module} kernel module" in str(e)
    assert "kernel tier" in str(e)
    basic(text, features=None)  # `netlab validate` judges the file alone


def test_security_groups_need_br_netfilter():
    e = err(BASIC, features=ALL - {"br_netfilter"})
    assert e.field == "clusters[0].model" and "br_netfilter" in str(e)


def test_a_node_in_another_vpc_than_the_pod_subnet():
    text = BASIC.replace("hosts:\n", "vpcs:\n  - name: other\n    cidr: 10.1.0.0/16\n"
                                     "    subnets: [{name: far, cidr: 10.1.0.0/24}]\nhosts:\n")
    e = err(text.replace("- {name: node-2, subnet: nodes}", "- {name: node-2, subnet: far}"))
    assert e.field == "clusters[0].nodes[1].subnet" and "a node's ENIs are in one VPC" in str(e)


def test_pods_and_machines_share_one_subnet_pool():
    text = BASIC.replace("pod_subnet: pods", "pod_subnet: intranet")
    lab = basic(text)
    # Nodes are on `nodes`; pods take intranet addresses first, the host the next free one.
    assert [str(p.ip) for p in lab.cluster("c1").netns_pods()][:2] == ["192.168.1.10", "192.168.1.11"]
    assert str(lab.hosts[0].eth0.ip) == "192.168.1.15"


def _ops(lab: Lab, kind):
    return [op for op in build(lab).ops if isinstance(op, kind)]


def test_macvlan_and_ipvlan_sub_enis_are_vepa_behind_a_hairpin_port():
    for kind, mode in (("macvlan", "vepa"), ("ipvlan", "l2 vepa")):
        lab = basic(BASIC.replace("sub_eni: macvlan", f"sub_eni: {kind}"))
        links = [op for op in _ops(lab, AddLink) if op.kind == kind]
        assert len(links) == 5 and {(op.parent, op.mode) for op in links} == {("eth1", mode)}
        assert [op.ifname for op in _ops(lab, SetBridgePort)] == ["t-c1-node-1", "t-c1-node-2"]
        assert [op.address for op in links][0] == (None if kind == "ipvlan" else "0a:58:c0:a8:02:0a")


def test_sub_enis_are_created_straight_into_the_pod():
    lab = basic()
    c = lab.cluster("c1")
    web0 = next(p for p in c.pods if p.name == "web-0")
    (op,) = [op for op in _ops(lab, AddLink) if op.netns == web0.netns]
    assert str(op) == (f"ip -n {c.node('node-1').netns} link add link eth1 name sub-web-0 netns {web0.netns} "
                       "address 0a:58:c0:a8:02:0a type macvlan mode vepa")
    renamed = [op for op in _ops(lab, SetLink) if op.netns == web0.netns and op.name]
    assert [str(op) for op in renamed] == [f"ip -n {web0.netns} link set sub-web-0 name eth0 up"]


def test_vlan_sub_enis_are_mapped_to_the_pod_at_the_vpc_side():
    lab = basic(BASIC.replace("sub_eni: macvlan", "sub_eni: vlan"))
    vpc = lab.vpc.netns
    node_side = [op for op in _ops(lab, AddLink) if op.kind == "vlan" and op.netns != vpc]
    assert [op.vlan_id for op in node_side] == [1, 1, 2, 3, 2]  # one VLAN per pod on its node's trunk
    vpc_side = [op for op in _ops(lab, AddLink) if op.kind == "vlan" and op.netns == vpc]
    assert [(op.ifname, op.parent, op.vlan_id) for op in vpc_side][:2] == [
        ("v-c1-web-0", "t-c1-node-1", 1), ("v-c1-web-1", "t-c1-node-2", 1)]
    masters = {op.ifname: op.master for op in _ops(lab, SetLink) if op.netns == vpc}
    assert masters["v-c1-web-0"] == "br-pods" and masters["t-c1-node-1"] is None  # a trunk, not a port
    assert not _ops(lab, SetBridgePort)


def test_the_veth_path_carries_the_node_ip_and_the_service_cidr():
    lab = basic()
    c = lab.cluster("c1")
    client = next(p for p in c.pods if p.name == "client")
    routes = {(op.netns, str(op.destination)): op for op in _ops(lab, AddRoute)}
    assert routes[(client.netns, "10.247.0.0/16")].via == ip_address("192.168.0.10")
    assert routes[(client.netns, "10.247.0.0/16")].dev == "veth0"
    assert routes[(client.netns, "0.0.0.0/0")].via == ip_address("192.168.2.1")
    assert routes[(c.node("node-1").netns, "192.168.2.13/32")].dev == client.host_ifname
    snat = [op for op in _ops(lab, NftApply) if op.netns == c.node("node-1").netns]
    assert "snat to 192.168.0.10" in snat[0].rules and 'iifname "veth-*"' in snat[0].rules


def test_model_data_round_trips_through_lab_json():
    lab = basic(BASIC.replace("sub_eni: macvlan", "sub_eni: vlan"))
    again = Lab.model_validate(json.loads(lab.model_dump_json()))
    assert again == lab
    assert type(again.cluster("c1").network).__name__ == "EniNetwork"
    assert type(again.cluster("c1").pods[0].network).__name__ == "EniPod"


def test_scale_takes_free_pod_subnet_addresses_vlans_and_resyncs_the_groups():
    lab = basic(BASIC.replace("sub_eni: macvlan", "sub_eni: vlan"))
    change = scale.scale(lab, "c1/web", 5)
    assert [(p.name, p.node, str(p.ip), p.network.vlan_id) for p in change.added] == [
        ("web-3", "node-2", "192.168.2.15", 3), ("web-4", "node-1", "192.168.2.16", 4)]
    sg = [op for op in change.steps[0] if isinstance(op, NftApply)]
    assert len(sg) == 1 and "192.168.2.16 : jump in-c1/web-4" in sg[0].rules
    down = scale.scale(change.lab, "c1/web", 1)
    assert [op.ifname for op in down.ops if isinstance(op, DelLink)] == [
        "v-c1-web-1", "v-c1-web-2", "v-c1-web-3", "v-c1-web-4"]
    crowded = BASIC.replace("- {name: node-1, subnet: nodes}", "- {name: node-1, subnet: nodes, sub_eni_quota: 3}")
    with pytest.raises(UserError, match="node 'node-1' holds 3 sub-ENIs already"):
        scale.scale(basic(crowded), "c1/web", 5)


def test_scale_of_host_network_pods_builds_nothing():
    lab = basic(BASIC.replace("replicas: 2, node: [node-1, node-2], hostNetwork", "replicas: 1, node: [node-1, node-2], hostNetwork"))
    change = scale.scale(lab, "c1/agent", 2)
    assert change.added[0].ip == lab.cluster("c1").node("node-2").eth0.ip
    assert not [op for op in change.steps[0] if isinstance(op, AddNetns)]
    down = scale.scale(change.lab, "c1/agent", 0)
    assert not [op for op in down.ops if type(op).__name__ == "DelNetns"]


def test_a_long_cluster_name_still_names_a_valid_default_group():
    name = "c" * 40
    lab = basic(BASIC.replace("  - name: c1\n", f"  - name: {name}\n").replace("c1/", f"{name}/"))
    group = lab.cluster(name).network.default_group
    assert len(group) <= 40 and group.endswith("-cce-eni") and lab.security_group(group) is not None


def test_traits():
    lab = basic()
    c = lab.cluster("c1")
    node, pod = c.node("node-1"), c.pods[0]
    assert (eni.MODEL.ENCAP, eni.MODEL.VPC_HOST_TO_POD, eni.MODEL.POD_UPLINK) == ("none", "reach", "eth1")
    assert eni.MODEL.egress_source(c, node, pod) == pod.ip
    assert eni.MODEL.node_addresses(c, node) == (node.eth0.ip,)
    assert eni.MODEL.service_sources(c, node, pod) == (node.eth0.ip, pod.ip)


def test_a_pods_calls_to_its_services_load_balancer_addresses_go_over_its_veth():
    text = BASIC.replace("      - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}",
                         "      - {name: web, selector: {app: web}, externalIPs: [192.168.1.99], "
                         "ports: [{port: 80, targetPort: 8080}]}")
    lab = basic(text)
    c = lab.cluster("c1")
    assert eni.kube_proxy_listeners(c) == [(ip_address("192.168.1.99"), "tcp", 80)]
    client = next(p for p in c.pods if p.name == "client")
    rules = [str(op) for op in build(lab).ops if op.netns == client.netns and type(op).__name__ == "AddRule"]
    assert rules == [f"ip -n {client.netns} rule add priority 1000 to 192.168.1.99 ipproto tcp dport 80 lookup 100"]
    table = [op for op in _ops(lab, AddRoute) if op.netns == client.netns and op.table == 100]
    assert [(str(op.destination), str(op.via), op.dev) for op in table] == [("0.0.0.0/0", "192.168.0.10", "veth0")]
