"""The cloud around the clusters (pure, no root): the scenario's edge sections resolved and
refused as the service does, the rulesets rendered, the access matrix's expectations."""

from __future__ import annotations

import json
from collections import Counter
from ipaddress import IPv4Network, ip_address

import pytest

from netlab.cloud import eip as eip_mod, natgw
from netlab.errors import ScenarioError
from netlab.lab import refs
from netlab.lab.model import Lab
from netlab.plan import ops
from netlab.plan.planner import build
from netlab.probe import checks
from netlab.probe.listeners import listeners
from netlab.probe.edge_checks import edge_matrix
from netlab.scenario import loader
from tests.helpers import load_text

ACCESS = loader.builtin_path("access").read_text()

EDGE = """\
name: t
vpc:
  subnets: [{name: nodes, cidr: 192.168.0.0/24}, {name: pods, cidr: 192.168.8.0/22}]
internet:
  hosts: [{name: client, ports: []}, {name: server}]
hosts:
  - {name: ecs-1, subnet: nodes}
eips:
  - {bind: c1/n1}
nat_gateways:
  - {name: ngw, snat_rules: [{source: nodes}]}
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}, {name: n2}]
    pods: [{name: a, node: n1, ports: [{port: 8080}]}, {name: b, node: n2, ports: [{port: 8080}]}]
"""


# access.yaml binds security groups to a host and to nodes: a kernel with br_netfilter.
HOST = frozenset({"br_netfilter"})


def access() -> Lab:
    return load_text(ACCESS, "access.yaml", features=HOST)


def err(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_text(text, features=HOST)
    return e.value


# -- resolve ----------------------------------------------------------------------------------
def test_access_resolves_every_edge_object():
    lab = access()
    assert lab.internet.cidr == IPv4Network("203.0.113.0/24") and lab.internet.gateway.ip == ip_address("203.0.113.1")
    assert [(h.ref, str(h.eth0.ip)) for h in lab.internet.hosts] == [("internet/client", "203.0.113.10"),
                                                                     ("internet/server", "203.0.113.11")]
    assert [g.ref for g in lab.igws] == ["igw/vpc", "igw/peer"]
    # EIPs from the pool's tenth address on; the NAT gateway's is written explicitly.
    assert [(str(e.ip), e.bind, e.kind, str(e.private)) for e in lab.eips] == [
        ("198.51.100.10", "cce-vpc/node-1", "node", "192.168.0.10"),
        ("198.51.100.11", "cce-tunnel/node-1", "node", "192.168.0.12"),
        ("198.51.100.12", "ecs-1", "host", "192.168.1.10"),
        ("198.51.100.50", "natgw/ngw", "natgw", "None")]
    gw = lab.nat_gateways[0]
    assert (gw.vpc, [str(r.source) for r in gw.snat_rules]) == ("vpc", ["192.168.0.0/24"])
    # Every link has its own /30 of the transit range.
    ends = [ln.address.network for ln in [lab.igws[0].vpc_link, lab.igws[0].internet_link, lab.igws[1].vpc_link,
                                          lab.igws[1].internet_link, gw.vpc_link, gw.igw_link, lab.peerings[0].link]]
    assert len(set(ends)) == 7 and all(e.subnet_of(IPv4Network("169.254.0.0/16")) for e in ends)
    # The route tables: the NAT gateway's default route, the peering entries as written.
    vpc, peer = lab.vpcs
    assert [(str(r.destination), r.target) for r in vpc.routes] == [
        ("172.16.0.0/24", None), ("172.16.1.0/24", None), ("0.0.0.0/0", "natgw/ngw"),
        ("10.1.0.0/16", "peering/vpc-peer")]
    assert vpc.routes[-1].nexthop == lab.peerings[0].link.peer_address.ip
    assert [r.owner for r in peer.routes] == ["vpcs[0].routes[0]", "vpcs[0].routes[1]"]


def test_edge_objects_round_trip_through_lab_json():
    lab = access()
    again = Lab.model_validate(json.loads(lab.model_dump_json()))
    assert again == lab and again.internet.hosts[0].ref == "internet/client"


def test_status_objects_list_the_cloud():
    lab = access()
    kinds = Counter(kind for kind, *_ in lab.objects())
    assert kinds["internet"] == 1 and kinds["igw"] == 2 and kinds["natgw"] == 1 and kinds["vpc"] == 2
    assert ("host", None, "internet/server", "nl-access.internet.server") in lab.objects()
    assert lab.eips_of("cce-vpc/node-1") == [ip_address("198.51.100.10")] and lab.eips_of("ecs-peer") == []
    assert len(set(lab.netns_names())) == len(lab.netns_names())


def test_without_an_internet_section_nothing_changes():
    lab = load_text(EDGE.split("internet:")[0] + "clusters:" + EDGE.split("clusters:")[1])
    assert lab.internet is None and not lab.igws and not lab.eips
    assert not [s for s in checks.matrix(lab) if "internet" in s.name]


@pytest.mark.parametrize("change,field,message", [
    ("internet:\n  cidr: 8.8.8.0/24\n", "internet.cidr", "is not inside a documentation range"),
    ("internet:\n  eip_pool: 100.64.0.0/24\n", "internet.eip_pool", "is not inside a documentation range"),
    ("internet:\n  eip_pool: 203.0.113.0/25\n", "internet.eip_pool", "overlaps internet.cidr"),
    ("eips:\n  - {bind: c1/n1, ip: 198.51.101.10}\n", "eips[0].ip", "is not an address of the EIP pool"),
    ("eips:\n  - {bind: c1/a}\n", "eips[0].bind", "an EIP binds to a pod only in the eni model"),
    ("eips:\n  - {bind: c1/n1}\n  - {bind: c1/n1}\n", "eips[1].bind", "already has an EIP"),
    ("eips:\n  - {bind: natgw/ngw}\n", "eips[0].bind", "nat_gateways[].eips"),
    ("eips:\n  - {bind: ecs-9}\n", "eips[0].bind", "unknown object 'ecs-9'"),
])
def test_public_addresses_and_eips_are_refused_as_the_service_does(change, field, message):
    head, tail = EDGE.split("nat_gateways:")
    text = head.split("eips:")[0] if change.startswith("eips") else head
    if change.startswith("internet"):
        text = text.replace("internet:\n", change + "  hosts:\n").replace("  hosts: [", "    - ").replace(
            "    - {name: client, ports: []}, {name: server}]", "    - {name: server}")
    else:
        text += change
    text += "nat_gateways:" + tail
    e = err(text)
    assert e.field == field and message in str(e), str(e)


@pytest.mark.parametrize("source,message", [
    ("172.16.0.0/16", "is the container CIDR of cluster 'c1' (model vpc), not a VPC subnet"),
    ("10.9.0.0/24", "is not inside a subnet of VPC 'vpc'"),
    ("nodez", "is neither a subnet of VPC 'vpc'"),
])
def test_a_snat_rule_takes_a_vpc_subnet_only(source, message):
    e = err(EDGE.replace("{source: nodes}", f"{{source: {source}}}"))
    assert e.field == "nat_gateways[0].snat_rules[0].source" and message in str(e), str(e)
    assert "write the node subnet (nodes)" in str(e) or "container" not in message
    # An eni-style pod subnet is a VPC subnet: accepted.
    lab = load_text(EDGE.replace("{source: nodes}", "{source: nodes}, {source: pods}"))
    assert [r.subnet for r in lab.nat_gateways[0].snat_rules] == ["nodes", "pods"]


def test_nat_gateway_refusals():
    assert "needs `internet:`" in str(err(EDGE.replace("internet:\n  hosts: [{name: client, ports: []}, "
                                                      "{name: server}]\n", "").replace("eips:\n  - {bind: c1/n1}\n", "")))
    e = err(EDGE.replace("  - {name: ngw, snat_rules: [{source: nodes}]}",
                         "  - {name: ngw}\n  - {name: ngw2}"))
    assert e.field == "nat_gateways[1].vpc" and "already has NAT gateway 'ngw'" in str(e)
    e = err(EDGE.replace("{source: nodes}", "{source: nodes, eip: 198.51.100.99}"))
    assert e.field == "nat_gateways[0].snat_rules[0].eip" and "is not an EIP of NAT gateway" in str(e)
    e = err(EDGE.replace("{source: nodes}", "{source: nodes}, {source: 192.168.0.0/25}"))
    assert "a subnet takes one SNAT rule" in str(e)


@pytest.mark.parametrize("old,new,field,message", [
    ("nexthop: peering/vpc-peer}\nvpcs", "nexthop: peering/nope}\nvpcs", "vpc.routes[0].nexthop",
     "no peering 'nope'; peerings: vpc-peer"),
    ("nexthop: peering/vpc-peer}\nvpcs", "nexthop: natgw/other}\nvpcs", "vpc.routes[0].nexthop",
     "VPC 'vpc' has no NAT gateway 'other'"),
    ("nexthop: peering/vpc-peer}\nvpcs", "nexthop: vpc-peer}\nvpcs", "vpc.routes[0].nexthop", "is not a next hop"),
    ("destination: 10.1.0.0/16", "destination: 192.168.1.0/24", "vpc.routes[0].destination",
     "overlaps subnet 'intranet'"),
    ("vpcs: [vpc, peer]", "vpcs: [vpc, vpc]", "peerings[0].vpcs", "connects two different VPCs"),
    ("vpcs: [vpc, peer]", "vpcs: [vpc, other]", "peerings[0].vpcs[1]", "unknown VPC 'other'"),
    ("cidr: 10.1.0.0/16", "cidr: 192.168.128.0/17", "vpcs[0].cidr", "overlaps VPC 'vpc'"),
])
def test_route_entries_and_peerings_are_located(old, new, field, message):
    assert old in ACCESS
    text = ACCESS.replace(old, new)
    if "192.168.128.0/17" in new:
        text = text.replace("10.1.0.0/24", "192.168.128.0/24")
    e = err(text)
    assert e.field == field and message in str(e), str(e)
    assert e.line is not None


def test_a_route_to_a_peering_the_vpc_is_not_on_is_refused():
    text = ACCESS.replace("peerings:\n  - {name: vpc-peer, vpcs: [vpc, peer]}",
                          "peerings:\n  - {name: vpc-peer, vpcs: [vpc, peer]}\n  - {name: p2, vpcs: [peer, third]}")
    text = text.replace("vpcs:\n  - name: peer", "vpcs:\n  - name: third\n    cidr: 10.2.0.0/16\n"
                                                  "    subnets: [{name: third-hosts, cidr: 10.2.0.0/24}]\n"
                                                  "  - name: peer")
    text = text.replace("{destination: 10.1.0.0/16, nexthop: peering/vpc-peer}",
                        "{destination: 10.1.0.0/16, nexthop: peering/p2}")
    e = err(text)
    assert e.field == "vpc.routes[0].nexthop" and "connects peer and third, not VPC 'vpc'" in str(e)


def test_edge_names_share_the_lab_name_space():
    e = err(EDGE.replace("  - name: c1\n", "  - name: internet\n"))
    assert e.field == "clusters[0].name" and "collides with the internet" in str(e)


# -- plan ------------------------------------------------------------------------------------
def test_edge_plan_builds_namespaces_before_use_and_rules_whole():
    plan = build(access())
    created: set[str] = set()
    for op in plan.ops:
        if isinstance(op, ops.AddNetns):
            created.add(op.netns)
        elif not isinstance(op, ops.AddRule):
            assert op.netns in created, f"{op} before its namespace"
    nft = [op for op in plan.ops if isinstance(op, ops.NftApply)]
    # each VPC router's no-route rule (ICMP net unreachable), then the edge's rulesets
    assert [op.netns for op in nft] == ["nl-access.vpc", "nl-access.peer", "nl-access.vpc.igw", "nl-access.peer.igw",
                                        "nl-access.natgw.ngw", "nl-access.vpc"]  # the last: the VPC's security groups
    rules = [str(op) for op in plan.ops if isinstance(op, ops.AddRule)]
    assert rules == ["ip -n nl-access.vpc rule add priority 1000 lookup main suppress_prefixlength 0",
                     "ip -n nl-access.vpc rule add priority 1100 from 192.168.0.10 lookup 100",
                     "ip -n nl-access.vpc rule add priority 1100 from 192.168.0.12 lookup 100",
                     "ip -n nl-access.vpc rule add priority 1100 from 192.168.1.10 lookup 100"]
    assert "ip -n nl-access.vpc route add default via 169.254.0.1 table 100" in plan.render()


def test_nat_gateway_ruleset_replaces_itself_whole():
    lab = access()
    text = natgw.ruleset(lab, lab.nat_gateways[0])
    assert text.splitlines()[1:4] == ["table ip netlab-natgw", "delete table ip netlab-natgw",
                                      "table ip netlab-natgw {"]
    assert '\t\toifname "igw0" ip saddr 192.168.0.0/24 snat to 198.51.100.50' in text
    assert text.index("accept comment \"SNAT rule: nodes\"") < text.index("drop comment")


def test_eip_ruleset_maps_each_eip_to_its_port_both_ways():
    lab = access()
    text = eip_mod.ruleset(lab, lab.igws[0])
    assert "elements = { 198.51.100.10 : 192.168.0.10, 198.51.100.11 : 192.168.0.12, 198.51.100.12 : 192.168.1.10 }" in text
    assert "elements = { 192.168.0.10 : 198.51.100.10, 192.168.0.12 : 198.51.100.11, 192.168.1.10 : 198.51.100.12 }" in text
    assert "\t\telements = { 198.51.100.50 }" in text  # the NAT gateway's EIP may leave
    empty = eip_mod.ruleset(lab, lab.igws[1])
    assert "elements" not in empty and 'counter drop comment "no EIP, no SNAT' in empty


def test_new_ops_print_as_commands():
    assert str(ops.AddRule("ns", 1100, 100, src=IPv4Network("10.0.0.0/24"))) == \
        "ip -n ns rule add priority 1100 from 10.0.0.0/24 lookup 100"
    assert str(ops.AddRoute("ns", IPv4Network("0.0.0.0/0"), via=ip_address("169.254.0.1"), table=100)) == \
        "ip -n ns route add default via 169.254.0.1 table 100"


# -- netlab nat --------------------------------------------------------------------------------
def test_nat_change_removes_and_restores_a_rule():
    lab = access()
    removed, gw, steps = natgw.change(lab, "ngw", remove="nodes")
    assert gw.snat_rules == [] and "snat to" not in steps[0].rules and lab.nat_gateways[0].snat_rules
    blocked = {s.name.split(" (")[0]: s for s in edge_matrix(removed)}
    assert blocked["pod→internet: cce-vpc/web-1 → internet/server:80"].expect == "blocked"
    assert blocked["pod→internet: cce-vpc/web-0 → internet/server:80"].expect == "reach"  # node EIP
    restored, gw, _ = natgw.change(removed, "ngw", add="192.168.0.0/24")
    assert [r.subnet for r in gw.snat_rules] == ["nodes"]
    assert edge_matrix(restored) == edge_matrix(lab)
    with pytest.raises(natgw.NatError, match="no SNAT rule for 'pods'"):
        natgw.change(lab, "ngw", remove="pods")
    with pytest.raises(natgw.NatError, match="no NAT gateway 'x'"):
        natgw.change(lab, "x", add="nodes")
    with pytest.raises(natgw.NatError, match="container CIDR"):
        natgw.change(removed, "ngw", add="172.17.0.0/16")


# -- references, the agent ---------------------------------------------------------------------
def test_refs_name_the_cloud_and_eips():
    lab = access()
    assert refs.lookup(lab, "internet/client").netns == "nl-access.internet.client"
    assert refs.lookup(lab, "internet").kind == "internet"
    assert refs.lookup(lab, "igw/peer").netns == "nl-access.peer.igw"
    assert refs.lookup(lab, "natgw/ngw").ip == ip_address("198.51.100.50")
    eip = refs.lookup(lab, "198.51.100.11")
    assert (eip.kind, eip.netns, eip.obj.bind) == ("eip", None, "cce-tunnel/node-1")
    assert refs.lookup(lab, "203.0.113.11").name == "internet/server"
    assert refs.lookup(lab, "198.51.100.99").kind == "ip"  # in the pool, bound to nothing
    for text, message in (("internet/nobody", "the internet has no host 'nobody'"),
                          ("natgw/x", "no NAT gateway 'x'"), ("8.8.8.8", "not an address of this lab")):
        with pytest.raises(refs.RefError, match=message):
            refs.lookup(lab, text)


def test_the_agent_serves_public_hosts():
    found = [(x.owner, x.port) for x in listeners(access()) if x.owner.startswith("internet/")]
    assert found == [("internet/server", 80)]


# -- the access matrix --------------------------------------------------------------------------
def test_access_matrix_rows_and_expected_sources():
    lab = access()
    by_name = {s.name.split(" (")[0]: s for s in edge_matrix(lab)}
    kinds = Counter(name.split(":")[0] for name in by_name)
    assert kinds == {"node→internet": 4, "pod→internet": 4, "internet→NodePort via node EIP": 3,
                     "internet→node IP": 3, "pod→peer VPC host": 2, "peer VPC host→pod": 2,
                     "VPC host→internet": 3, "internet→host EIP": 1}
    src = {name: (s.expect, str(s.expect_source)) for name, s in by_name.items()}
    assert src["pod→internet: cce-vpc/web-0 → internet/server:80"] == ("reach", "198.51.100.10")  # node EIP
    assert src["pod→internet: cce-vpc/web-1 → internet/server:80"] == ("reach", "198.51.100.50")  # NAT gateway
    assert src["pod→internet: cce-tunnel/web-1 → internet/server:80"] == ("reach", "198.51.100.50")
    assert src["node→internet: cce-tunnel/node-1 → internet/server:80"] == ("reach", "198.51.100.11")
    assert src["pod→peer VPC host: cce-vpc/web-0 → ecs-peer:80"] == ("reach", "172.16.0.2")  # pod IP
    assert src["pod→peer VPC host: cce-tunnel/web-0 → ecs-peer:80"] == ("reach", "192.168.0.12")  # node IP
    assert src["peer VPC host→pod: ecs-peer → cce-vpc/web-0:8080"] == ("reach", "10.1.0.10")
    assert src["peer VPC host→pod: ecs-peer → cce-tunnel/web-0:8080"][0] == "blocked"
    assert src["VPC host→internet: ecs-1 → internet/server:80"] == ("reach", "198.51.100.12")
    assert src["VPC host→internet: ecs-peer → internet/server:80"][0] == "blocked"
    assert src["internet→host EIP: internet/client → 198.51.100.12:80"] == ("reach", "203.0.113.10")  # client IP
    local = by_name["internet→NodePort via node EIP: internet/client → cce-vpc/svc/web-local at 198.51.100.10:30081"]
    assert local.allowed_sources == (ip_address("203.0.113.10"),) and local.allowed_backends == ("cce-vpc/web-0",)
    assert by_name["internet→node IP: internet/client → cce-vpc/svc/web at 192.168.0.11:30080"].expect == "blocked"
    # Each name says the mechanism.
    full = [s.name for s in edge_matrix(lab) if s.name.startswith("pod→internet: cce-vpc/web-1")][0]
    assert "(SNAT to the node IP, NAT gateway ngw, SNAT rule nodes → 198.51.100.50)" in full


def test_peer_without_the_container_cidr_route_cannot_reach_vpc_model_pods():
    lab = load_text(ACCESS.replace("      - {destination: 172.16.0.0/16, nexthop: peering/vpc-peer}   "
                                   "# cce-vpc's container CIDR\n", ""), features=HOST)
    by_name = {s.name.split(" (")[0]: s for s in edge_matrix(lab)}
    assert by_name["peer VPC host→pod: ecs-peer → cce-vpc/web-0:8080"].expect == "blocked"
    assert by_name["pod→peer VPC host: cce-vpc/web-0 → ecs-peer:80"].expect == "blocked"  # no way back
    assert by_name["pod→peer VPC host: cce-tunnel/web-0 → ecs-peer:80"].expect == "reach"  # as its node


def test_generated_vpc_checks_stay_in_the_clusters_vpc():
    specs = checks.matrix(access())
    assert not [s for s in specs if s.name.startswith(("VPC host→pod: ecs-peer", "NodePort", "pod→VPC host"))
                and "ecs-peer" in s.name]


def test_non_masquerade_cidrs_decide_what_an_intranet_host_sees():
    text = loader.builtin_path("vpc-basic").read_text().replace(
        "    pod_cidr_size: 24\n", "    pod_cidr_size: 24\n    non_masquerade_cidrs: [10.0.0.0/8, 172.16.0.0/12]\n")
    lab = load_text(text)
    egress = {s.name: s for s in checks.matrix(lab)}["pod→VPC host: c1/web-1 → ecs-1:80"]
    assert egress.expect_source == ip_address("192.168.0.10")  # node-1's IP: SNATed
    rules = [op.rules for op in build(lab).ops if isinstance(op, ops.IptablesRestore) and "NETLAB-VPC-SNAT" in op.rules]
    assert len(rules) == 2 and "-d 192.168.0.0/16" not in rules[0] and "-d 10.0.0.0/8" in rules[0]
    default = {s.name: s for s in checks.matrix(load_text(loader.builtin_path("vpc-basic").read_text()))}
    assert default["pod→VPC host: c1/web-1 → ecs-1:80"].expect_source == ip_address("172.16.0.2")
    assert "'non_masquerade_cidrs' applies to model: vpc only" in str(err(
        "name: t\nclusters:\n  - {name: c, model: tunnel, non_masquerade_cidrs: [], nodes: [{name: n}]}\n"))
